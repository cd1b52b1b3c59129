"""A meeting's plan: finding meetings, planning one (details, agenda, papers) within the rules,
and who is entitled to attend (with those who must be told by post)."""

from __future__ import annotations

from typing import NamedTuple

from flask import current_app
from sqlalchemy import and_, func, not_, select, union
from sqlalchemy.orm import selectinload

from mailer import audit, scope
from mailer.db import session, utcnow
from mailer.members import count_cache, segments
from mailer.meetings import rules
from mailer.meetings.rules import LONDON, MeetingError
from mailer.models import (AgendaItem, AgendaPaper, Attendance, Branch, Campaign, EmailHealth, Meeting, MeetingCampaign,
                           MeetingKind, MeetingStatus, Member, MemberStatus, Officer, Suppression)
from mailer.pagination import Cursor, Key, KeysetPage, paginate

EDITABLE = ("title", "kind", "branch_id", "starts_at", "ends_at", "venue_name", "venue_address", "online_url",
            "dial_in", "accessibility", "quorum")
CHANGES_MEMBERS_HEAR_OF = {"starts_at", "ends_at", "venue_name", "venue_address", "online_url", "dial_in"}


# --- finding ----------------------------------------------------------------------------------

def listing(officer: Officer, cursor: Cursor | None = None, per_page: int = 50) -> tuple[list[Meeting], KeysetPage]:
    """Upcoming meetings, soonest first, and a page of past ones (newest first), each with its branch
    and minutes loaded alongside (a fixed number of queries, however many meetings)."""
    ahead = and_(Meeting.starts_at >= utcnow(), Meeting.status != MeetingStatus.HELD)
    stmt = scope.meetings(officer).options(selectinload(Meeting.branch), selectinload(Meeting.minutes))
    upcoming = list(session.scalars(stmt.where(ahead).order_by(None).order_by(Meeting.starts_at, Meeting.id)))
    past = paginate(stmt.where(not_(ahead)), [Key(Meeting.starts_at, descending=True), Key(Meeting.id, descending=True)],
                    cursor or Cursor(), per_page, count=False)
    return upcoming, past


def notices(meeting: Meeting) -> list[MeetingCampaign]:
    """The meeting's campaigns (notice, updates, reminders, minutes), in the order they were made."""
    return list(session.scalars(select(MeetingCampaign).where(MeetingCampaign.meeting_id == meeting.id)
                                .order_by(MeetingCampaign.id)))


def proposals_read_from(meeting: Meeting) -> dict:
    """{attendance id: the message} for each answer read from a member's reply, awaiting confirmation."""
    return {a.id: a.message for a in session.scalars(select(Attendance).where(
        Attendance.meeting_id == meeting.id, Attendance.proposed.is_(True)))}


def meeting_of(campaign: Campaign) -> Meeting | None:
    """The meeting a campaign belongs to (its notice, update, reminder or minutes), if any."""
    link = session.scalar(select(MeetingCampaign).where(MeetingCampaign.campaign_id == campaign.id))
    return link.meeting if link else None


# --- planning ---------------------------------------------------------------------------------

def default_entitled(kind: MeetingKind, branch_id: int | None) -> dict:
    """Who may attend by default: a branch's members, the CLP's members, or the executive committee."""
    if kind is MeetingKind.EXECUTIVE:
        return {"tags": ["executive committee"]}
    definition = {"statuses": list(segments.DEFAULT_STATUSES)}
    if branch_id:
        definition["branches"] = [branch_id]
    return definition


def create(officer: Officer, values: dict) -> tuple[Meeting, list[str]]:
    """Plan a meeting with the default agenda. Returns it with any warnings (a clash). Not committed."""
    if not scope.sees_all(officer):
        values["branch_id"] = scope.own_branch_id(officer)  # a branch secretary's meetings are their branch's
    problems = rules.validate(values) + _branch_problems(values)
    if problems:
        raise MeetingError(" ".join(problems))
    kind = MeetingKind(values["kind"])
    meeting = Meeting(created_by_id=officer.id, entitled=segments.clean(values.get("entitled") or default_entitled(
        kind, values.get("branch_id"))), **{k: values.get(k) for k in EDITABLE if k in values} | {"kind": kind})
    for k in ("venue_name", "venue_address", "online_url", "dial_in", "accessibility"):
        setattr(meeting, k, (getattr(meeting, k) or "").strip())
    session.add(meeting)
    session.flush()
    for position, (role, title) in enumerate(rules.default_agenda(kind), 1):
        session.add(AgendaItem(meeting_id=meeting.id, position=position, title=title, role=role))
    _link_last_minutes(meeting)
    audit.record("meeting.create", "meeting", meeting.id, {"title": [None, meeting.title],
                                                           "starts_at": [None, meeting.starts_at.isoformat()]},
                 officer=officer)
    return meeting, _warnings(meeting)


def _warnings(meeting: Meeting) -> list[str]:
    from mailer.words import meeting_name

    return [f"{meeting_name(m.title, m.body_name)} is at an overlapping time "
            f"({m.starts_at.astimezone(LONDON).strftime('%d/%m/%Y %H:%M')})."
            for m in rules.clashes(meeting.branch_id, meeting.starts_at, meeting.ends_at, meeting.id)]


def _link_last_minutes(meeting: Meeting) -> None:
    """The "minutes of the last meeting" item points at the previous meeting of the body's minutes."""
    from mailer.models import Minutes

    item = next((i for i in meeting.agenda if i.role == "last_minutes"), None) or session.scalar(
        select(AgendaItem).where(AgendaItem.meeting_id == meeting.id, AgendaItem.role == "last_minutes"))
    if item is None:
        return
    previous = session.scalar(select(Minutes).join(Meeting, Minutes.meeting_id == Meeting.id).where(
        Meeting.id != meeting.id, Meeting.starts_at < meeting.starts_at,
        Meeting.branch_id.is_(None) if meeting.branch_id is None else Meeting.branch_id == meeting.branch_id,
        Meeting.kind == meeting.kind if meeting.kind is MeetingKind.AGM else Meeting.kind != MeetingKind.AGM)
        .order_by(Meeting.starts_at.desc()).limit(1))
    item.last_minutes_id = previous.id if previous else None


def _branch_problems(values: dict) -> list[str]:
    """A meeting's branch must be one Mailer holds (the form offers only those; the API takes a number)."""
    branch_id = values.get("branch_id")
    return ["There is no such branch."] if branch_id and session.get(Branch, branch_id) is None else []


def update(officer: Officer, meeting: Meeting, values: dict) -> tuple[dict, list[str]]:
    """Change a meeting's details. A change of time or place after the notice raises the invite's
    SEQUENCE, so the update members are sent replaces the event in their calendars. Not committed."""
    if meeting.status in (MeetingStatus.CANCELLED, MeetingStatus.HELD):
        raise MeetingError(f"The meeting is {meeting.status.value}; it can no longer be changed.")
    if not scope.sees_all(officer):
        values = {k: v for k, v in values.items() if k != "branch_id"}  # it stays their branch's meeting
    merged = {k: getattr(meeting, k) for k in EDITABLE} | values
    problems = rules.validate(merged, meeting) + _branch_problems(values)
    if problems:
        raise MeetingError(" ".join(problems))
    before = {k: getattr(meeting, k) for k in EDITABLE} | {"entitled": meeting.entitled}
    for k, v in values.items():
        if k in EDITABLE:
            setattr(meeting, k, MeetingKind(v) if k == "kind" else v)
    if "entitled" in values:  # None: back to the default for the body and kind
        meeting.entitled = segments.clean(values["entitled"] or default_entitled(meeting.kind, meeting.branch_id))
    changes = audit.diff(before, {k: getattr(meeting, k) for k in EDITABLE} | {"entitled": meeting.entitled})
    if changes:
        if meeting.status is MeetingStatus.NOTICED and CHANGES_MEMBERS_HEAR_OF & changes.keys():
            meeting.ical_sequence += 1
        audit.record("meeting.update", "meeting", meeting.id, changes, officer=officer)
    return changes, _warnings(meeting)


def needs_update_notice(meeting: Meeting) -> bool:
    """Members were sent an earlier version of the invite than the meeting now has."""
    sent = session.scalar(select(func.max(MeetingCampaign.ical_sequence)).where(
        MeetingCampaign.meeting_id == meeting.id, MeetingCampaign.purpose.in_(("notice", "update"))))
    return sent is not None and sent < meeting.ical_sequence and meeting.status is MeetingStatus.NOTICED


def set_agenda(officer: Officer, meeting: Meeting, items: list[dict]) -> None:
    """Replace the agenda with `items` ({"id"?, "title", "notes"}) in order. Not committed."""
    if meeting.status in (MeetingStatus.HELD, MeetingStatus.CANCELLED):
        raise MeetingError("The agenda of a held or cancelled meeting cannot change.")
    keep = {i.id: i for i in meeting.agenda}
    seen = set()
    for position, entry in enumerate(items, 1):
        title = " ".join((entry.get("title") or "").split())
        if not title:
            continue
        item = keep.get(int(entry["id"])) if entry.get("id") else None
        if item is None:
            item = AgendaItem(meeting_id=meeting.id, role="")
            session.add(item)
        item.position, item.title, item.notes = position, title[:300], (entry.get("notes") or "").strip()
        seen.add(item.id)
    for item_id, item in keep.items():
        if item_id not in seen:
            session.delete(item)
    session.flush()
    session.expire(meeting, ["agenda"])
    audit.record("meeting.agenda", "meeting", meeting.id, note=" | ".join(i.title for i in meeting.agenda),
                 officer=officer)


def add_paper(officer: Officer, item: AgendaItem, filename: str, data: bytes, content_type: str) -> AgendaPaper:
    if not data:
        raise MeetingError(f"{filename} is empty.")
    if len(data) > current_app.config["ATTACHMENT_MAX_BYTES"]:
        raise MeetingError(f"{filename} is larger than papers may be; link to it instead.")
    paper = AgendaPaper(item_id=item.id, filename=filename[-200:], content_type=content_type or "application/pdf",
                        size=len(data), data=data)
    session.add(paper)
    audit.record("meeting.paper", "meeting", item.meeting_id, note=filename, officer=officer)
    return paper


# --- who may attend -----------------------------------------------------------------------------

def entitled_query(meeting: Meeting):
    """SELECT of the members entitled to attend (the meeting's segment, within its body)."""
    stmt = select(Member).where(segments.condition(segments.clean(meeting.entitled)),
                                Member.status != MemberStatus.RESIGNED)
    if meeting.branch_id:
        stmt = stmt.where(Member.branch_id == meeting.branch_id)
    return stmt


class PostalRow(NamedTuple):
    """What the postal list shows of a member (plain columns: an AGM's list is thousands long)."""

    id: int
    first_name: str | None
    last_name: str | None
    membership_number: str | None
    postcode: str | None
    email: str | None
    notices_consent: bool
    email_health: EmailHealth

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p) or "(no name)"


def _postal_query(meeting: Meeting):
    """Entitled members without a working email for notices. Each reason is found by an index (no
    address, on hold, objected, suppressed: a few in a hundred thousand), and only those members'
    rows are checked against the meeting's segment: never a pass over every member."""
    candidates = union(
        select(Member.id).where(Member.email.is_(None)),
        select(Member.id).where(Member.email == ""),
        select(Member.id).where(Member.email_health == EmailHealth.ON_HOLD),
        select(Member.id).where(Member.notices_consent.is_(False)),
        select(Member.id).join(Suppression, Suppression.email == Member.email)  # both stored lower-case
        .where(Suppression.stream == "all"))
    return entitled_query(meeting).where(Member.id.in_(candidates.scalar_subquery()))


def postal_list(meeting: Meeting, limit: int | None = None) -> list[PostalRow]:
    """Entitled members with no working email for notices: no address, on hold, objected, suppressed.
    By name; the first `limit` of them when given."""
    stmt = _postal_query(meeting).with_only_columns(*(getattr(Member, f) for f in PostalRow._fields)) \
        .order_by(Member.last_name, Member.first_name, Member.id).limit(limit)
    return [PostalRow(*row) for row in session.execute(stmt)]


def postal_count(meeting: Meeting) -> int:
    """How many are on the postal list: remembered until members, suppressions or answers change
    (mailer.members.count_cache), so the meeting page does not count them on every view."""
    key = ["postal", meeting.id, meeting.entitled, meeting.branch_id]
    return count_cache.remembered("meeting-count", key, lambda: {"postal": session.scalar(
        _postal_query(meeting).with_only_columns(func.count(Member.id)))})["postal"]
