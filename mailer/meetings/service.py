"""A meeting's life: plan it, build its agenda, notice it within the rules (with its invite),
tell members of changes or a cancellation, remind them, and keep the register.

Notices go through the normal sending pipeline on the notices stream: a campaign per notice,
linked to the meeting, so the record of who was sent what and when is its Delivery rows."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import NamedTuple
from datetime import timedelta

from flask import current_app
from itsdangerous import BadSignature
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import and_, case, func, not_, or_, select, union
from sqlalchemy.orm import selectinload

from mailer import audit, scope, work
from mailer.compose import personal, starters
from mailer.db import session, utcnow
from mailer.members import count_cache, segments
from mailer.meetings import calendar, rules
from mailer.meetings.rules import LONDON, MeetingError
from mailer.models import (AgendaItem, AgendaPaper, Attachment, Attendance, Campaign, Delivery, EmailHealth, Meeting,
                           MeetingCampaign, MeetingKind, MeetingStatus, Member, MemberStatus, Officer, Response,
                           Stream, Suppression)
from mailer.pagination import Cursor, Key, KeysetPage, paginate
from mailer.sending import campaigns as sending

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
    problems = rules.validate(values)
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


def update(officer: Officer, meeting: Meeting, values: dict) -> tuple[dict, list[str]]:
    """Change a meeting's details. A change of time or place after the notice raises the invite's
    SEQUENCE, so the update members are sent replaces the event in their calendars. Not committed."""
    if meeting.status in (MeetingStatus.CANCELLED, MeetingStatus.HELD):
        raise MeetingError(f"The meeting is {meeting.status.value}; it can no longer be changed.")
    if not scope.sees_all(officer):
        values = {k: v for k, v in values.items() if k != "branch_id"}  # it stays their branch's meeting
    merged = {k: getattr(meeting, k) for k in EDITABLE} | values
    problems = rules.validate(merged, meeting)
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


# --- notices ----------------------------------------------------------------------------------

class _Keep:
    """Renders as the Jinja expression it stands for, to be filled per member when sending."""

    def __init__(self, expression: str):
        self.expression = expression

    def __getattr__(self, name: str) -> _Keep:
        return _Keep(f"{self.expression}.{name}")

    def __str__(self) -> str:
        return "{{ " + self.expression + " }}"


@dataclass
class MeetingView:
    """A meeting as notice templates see it."""

    title: str
    body: str
    kind: str
    when: str
    date: str
    time: str
    where: str
    online: str
    dial_in: str
    accessibility: str
    agenda: str
    reason: str = ""

    @classmethod
    def of(cls, meeting: Meeting) -> MeetingView:
        start = meeting.starts_at.astimezone(LONDON)
        end = meeting.ends_at.astimezone(LONDON) if meeting.ends_at else None
        when = start.strftime("%A %-d %B %Y, %-I:%M%p").replace("AM", "am").replace("PM", "pm")
        if end:
            when += end.strftime(" to %-I:%M%p").replace("AM", "am").replace("PM", "pm")
        where = ", ".join(p for p in (meeting.venue_name, meeting.venue_address) if p) or "online only"
        agenda = "\n".join(f"{i}. {item.title}" for i, item in enumerate(meeting.agenda, 1))
        return cls(meeting.title, meeting.body_name, meeting.kind.label, when, start.strftime("%A %-d %B %Y"),
                   start.strftime("%H:%M"), where, meeting.online_url, meeting.dial_in,
                   meeting.accessibility or "Please tell the secretary of any access needs.", agenda,
                   meeting.cancelled_reason)


def _fill(template: str, meeting: Meeting) -> str:
    """A starter's text with the meeting filled in now; member values and links stay for each member."""
    env = SandboxedEnvironment(autoescape=False, keep_trailing_newline=True)
    return env.from_string(template).render(
        meeting=MeetingView.of(meeting), member=_Keep("member"), org_name=_Keep("org_name"),
        attending_url=_Keep("attending_url"), apologies_url=_Keep("apologies_url"),
        not_attending_url=_Keep("not_attending_url"), web_url=_Keep("web_url"),
        preferences_url=_Keep("preferences_url"))


def _meeting_campaign(officer: Officer, meeting: Meeting, purpose: str, starter_slug: str, subject_prefix: str = "",
                      definition: dict | None = None) -> Campaign:
    starter = starters.get(starter_slug)
    campaign = Campaign(stream=Stream.NOTICES, name=f"{meeting.title}: {purpose}", from_name=current_app.config[
        "SENDER_NAME"], created_by=officer, branch_id=meeting.branch_id, starter=starter.slug,
                        segment=segments.clean(definition if definition is not None else meeting.entitled),
                        subject=subject_prefix + _fill(starter.subject, meeting), preheader=_fill(starter.preheader, meeting),
                        body_format=starter.body_format, body=_fill(starter.body, meeting))
    session.add(campaign)
    session.flush()
    attendees = None
    if calendar.method_for(meeting) == "REQUEST":
        attendees = [(m.full_name, m.email) for m in session.scalars(entitled_query(meeting)) if m.email]
    method = "CANCEL" if meeting.status is MeetingStatus.CANCELLED else calendar.method_for(meeting)
    ics = calendar.invite(meeting, attendees)
    session.add(Attachment(campaign_id=campaign.id, filename="invite.ics", size=len(ics), data=ics,
                           content_type=f"text/calendar; method={method}; charset=utf-8"))
    session.add(MeetingCampaign(meeting_id=meeting.id, campaign_id=campaign.id, purpose=purpose,
                                ical_sequence=meeting.ical_sequence))
    session.flush()
    session.refresh(campaign)
    return campaign


def send_or_leave(campaign: Campaign, officer: Officer | None) -> None:
    """Send the campaign with the meeting's change (both committed by the caller, the send queued
    after that commit), or, when it cannot be sent, refuse with the reason: the caller rolls back,
    so the meeting is not left noticed (or its minutes circulated) without its send."""
    try:
        sending.send_now(campaign, officer)
    except sending.CampaignError as exc:
        raise MeetingError(f"Nothing was sent and nothing has changed: {exc}") from None


def send_notice(officer: Officer, meeting: Meeting, override: str = "") -> Campaign:
    """Notice the meeting to everyone entitled, with its agenda and invite. Refused with the reason
    and the latest valid date when the rule cannot be met, unless an override reason is given
    (audited). The send is queued once the caller commits."""
    if meeting.status is MeetingStatus.CANCELLED:
        raise MeetingError("This meeting is cancelled: it cannot be noticed.")
    if meeting.status is MeetingStatus.HELD:
        raise MeetingError("This meeting has been held.")
    if meeting.status is MeetingStatus.NOTICED:  # a second notice to everyone would only confuse
        raise MeetingError("The notice has already gone: tell members of a change with an update instead.")
    check = rules.check_notice(meeting)
    if not check.ok:
        if not override.strip():
            raise MeetingError(check.reason)
        meeting.notice_override = override.strip()[:500]
        audit.record("meeting.notice_override", "meeting", meeting.id, {"days": [check.days_required, check.days_given]},
                     note=override.strip(), officer=officer)
    starter = "agm-notice" if meeting.kind is MeetingKind.AGM else "meeting-notice"
    campaign = _meeting_campaign(officer, meeting, "notice", starter)
    meeting.status = MeetingStatus.NOTICED
    audit.record("meeting.notice", "meeting", meeting.id, {"campaign": [None, campaign.id]}, officer=officer)
    # The notice and the meeting's new state are committed together by the caller, only once the notice
    # renders: if it cannot be sent, the meeting is left as it was (rolled back) and can be noticed again.
    send_or_leave(campaign, officer)
    schedule_reminder(meeting)
    return campaign


def send_update(officer: Officer, meeting: Meeting) -> Campaign:
    """Tell members of a change of time or place, with the updated invite (higher SEQUENCE)."""
    if meeting.status is not MeetingStatus.NOTICED:
        raise MeetingError("Only a noticed meeting has members to update.")
    campaign = _meeting_campaign(officer, meeting, "update", "meeting-notice", subject_prefix="Changed: ")
    audit.record("meeting.update_notice", "meeting", meeting.id, {"sequence": [None, meeting.ical_sequence]},
                 officer=officer)
    send_or_leave(campaign, officer)  # committed with the update, once it renders
    schedule_reminder(meeting)
    return campaign


def cancel(officer: Officer, meeting: Meeting, reason: str) -> Campaign | None:
    """Cancel the meeting; if it was noticed, members get a cancellation (METHOD:CANCEL)."""
    if meeting.status in (MeetingStatus.CANCELLED, MeetingStatus.HELD):
        raise MeetingError(f"The meeting is already {meeting.status.value}.")
    if not reason.strip():
        raise MeetingError("Say why the meeting is cancelled: members will read it.")
    was_noticed = meeting.status is MeetingStatus.NOTICED
    meeting.status, meeting.cancelled_reason = MeetingStatus.CANCELLED, reason.strip()[:500]
    meeting.ical_sequence += 1
    audit.record("meeting.cancel", "meeting", meeting.id, note=reason.strip(), officer=officer)
    campaign = None
    if was_noticed:
        campaign = _meeting_campaign(officer, meeting, "cancellation", "meeting-cancelled")
        send_or_leave(campaign, officer)  # committed with the cancellation, once it renders
    meeting.reminder_due_at = None
    return campaign


def mark_held(officer: Officer, meeting: Meeting) -> None:
    if meeting.status is MeetingStatus.CANCELLED:
        raise MeetingError("A cancelled meeting cannot be held.")
    meeting.status = MeetingStatus.HELD
    audit.record("meeting.held", "meeting", meeting.id, officer=officer)


def schedule_reminder(meeting: Meeting) -> None:
    """The reminder, REMINDER_HOURS before the start (one per version of the meeting): the meeting's
    row says when it is due, so reconcile can rebuild it; its job is queued after the commit."""
    hours = current_app.config["REMINDER_HOURS"]
    when = meeting.starts_at - timedelta(hours=hours)
    if not hours or when <= utcnow():
        meeting.reminder_due_at = None
        return
    meeting.reminder_due_at, meeting.reminder_sent_at = when, None
    work.after_commit("meeting_reminder", meeting.id, meeting.ical_sequence, when)


def reminders_to_send() -> list[Meeting]:
    """Noticed meetings still to come whose reminder is due (now or later) and has not gone."""
    return list(session.scalars(select(Meeting).where(
        Meeting.status == MeetingStatus.NOTICED, Meeting.reminder_due_at.is_not(None),
        Meeting.reminder_sent_at.is_(None), Meeting.starts_at > utcnow())))


def send_reminder(meeting_id: int, sequence: int) -> str:
    """The reminder job: to entitled members who sent no apologies and did not say they won't come."""
    meeting = session.get(Meeting, meeting_id)
    if meeting is None or meeting.status is not MeetingStatus.NOTICED or meeting.ical_sequence != sequence:
        return "not needed"
    if session.scalar(select(MeetingCampaign.id).where(MeetingCampaign.meeting_id == meeting.id,
                                                       MeetingCampaign.purpose == "reminder",
                                                       MeetingCampaign.ical_sequence == sequence)):
        return "already sent"
    definition = dict(segments.clean(meeting.entitled))
    definition["not_declined_meeting"] = meeting.id
    officer = session.get(Officer, meeting.created_by_id) if meeting.created_by_id else None
    campaign = _meeting_campaign(officer, meeting, "reminder", "meeting-notice", subject_prefix="Reminder: ",
                                 definition=definition)
    sending.send_now(campaign, officer)
    meeting.reminder_sent_at = utcnow()
    return "sent"


def postal_csv(meeting: Meeting) -> str:
    """The whole postal list, to address the printed notices."""
    from mailer.members.exportfile import SafeWriter

    out = io.StringIO()
    writer = SafeWriter(out)  # names come from members: never formulas
    writer.writerow(["membership number", "name", "postcode", "why by post"])
    for m in postal_list(meeting):
        writer.writerow([m.membership_number or "", m.full_name, m.postcode or "", postal_reason(m)])
    return out.getvalue()


def postal_reason(m: PostalRow) -> str:
    if not m.email:
        return "no email"
    if not m.notices_consent:
        return "objected to email"
    return "email on hold" if m.email_health is EmailHealth.ON_HOLD else "email suppressed"


def evidence_csv(meeting: Meeting) -> str:
    """Who was sent what, and when: every delivery of the meeting's notices, updates and reminders."""
    from mailer.members.exportfile import SafeWriter

    out = io.StringIO()
    writer = SafeWriter(out)  # names and subjects come from members and officers: never formulas
    writer.writerow(["purpose", "campaign", "membership number", "name", "email", "status", "sent at (UTC)",
                     "Message-ID", "error"])
    rows = session.execute(select(MeetingCampaign.purpose, Campaign.subject, Member.membership_number,
                                  Member.first_name, Member.last_name, Delivery.email, Delivery.status,
                                  Delivery.sent_at, Delivery.message_id, Delivery.error)
                           .join(Campaign, Campaign.id == MeetingCampaign.campaign_id)
                           .join(Delivery, Delivery.campaign_id == Campaign.id)
                           .outerjoin(Member, Member.id == Delivery.member_id)
                           .where(MeetingCampaign.meeting_id == meeting.id)
                           .order_by(MeetingCampaign.id, Delivery.id))
    for r in rows:
        writer.writerow([r.purpose, r.subject, r.membership_number or "", f"{r.first_name or ''} {r.last_name or ''}".strip(),
                         r.email, r.status.value, r.sent_at.isoformat() if r.sent_at else "", r.message_id or "",
                         r.error or ""])
    return out.getvalue()


# --- apologies and the register ----------------------------------------------------------------

_serializer = personal.response_serializer  # the links' tokens are made where the message is (compose)
response_token, response_links = personal.response_token, personal.response_links


def read_response_token(token: str) -> tuple[Meeting, Member] | None:
    try:
        meeting_id, public_id = _serializer().loads(token)
    except (BadSignature, ValueError, TypeError):
        return None
    meeting = session.get(Meeting, meeting_id)
    member = session.scalar(select(Member).where(Member.public_id == str(public_id)))
    return (meeting, member) if meeting is not None and member is not None else None


def response_of(meeting: Meeting, member: Member) -> Response | None:
    """The member's current answer to the meeting's notice, if any."""
    return session.scalar(select(Attendance.response).where(Attendance.meeting_id == meeting.id,
                                                            Attendance.member_id == member.id))


def record_response(meeting: Meeting, member: Member, response: Response, source: str,
                    message_id: int | None = None, proposed: bool = False) -> Attendance:
    """A member's answer (changeable until the meeting is held). Not committed."""
    if meeting.status is MeetingStatus.HELD:
        raise MeetingError("This meeting has already been held: apologies can no longer be sent.")
    if meeting.status is MeetingStatus.CANCELLED:
        raise MeetingError("This meeting was cancelled.")
    row = session.scalar(select(Attendance).where(Attendance.meeting_id == meeting.id, Attendance.member_id == member.id))
    if row is None:
        row = Attendance(meeting_id=meeting.id, member_id=member.id, response=Response.NONE, proposed=False)
        session.add(row)
    if proposed and row.response is not Response.NONE and not row.proposed:
        return row  # a member's own click beats a reading of their email
    row.response, row.source, row.responded_at, row.proposed = response, source, utcnow(), proposed
    row.message_id = message_id
    session.flush()
    audit.record("meeting.response", "meeting", meeting.id, {"member": [None, member.id],
                                                             "response": [None, response.value]},
                 note=source + (" (proposed)" if proposed else ""), actor=None if source == "officer" else
                 f"member ({source})")
    return row


def confirm(officer: Officer, attendance: Attendance, accept: bool) -> None:
    """An officer confirms (or rejects) apologies read from a member's reply. Not committed."""
    if accept:
        attendance.proposed, attendance.source = False, attendance.source + " (confirmed)"
    else:
        attendance.response, attendance.proposed = Response.NONE, False
    audit.record("meeting.response_confirm", "meeting", attendance.meeting_id,
                 {"member": [None, attendance.member_id], "accepted": [None, accept]}, officer=officer)


@dataclass
class RegisterRow:
    member: Member
    response: Response
    proposed: bool
    present: bool
    source: str
    attendance_id: int | None


@dataclass
class Register:
    rows: list[RegisterRow]
    expected: int
    apologies: int
    present: int
    quorum: int

    @property
    def quorate(self) -> bool | None:
        return None if not self.quorum else self.present >= self.quorum

    @property
    def attending(self) -> int:
        """Members who answered "I'll be there"."""
        return sum(1 for r in self.rows if r.response is Response.ATTENDING)


def register(meeting: Meeting) -> Register:
    """Every entitled member with their answer and presence; counts and the quorum check."""
    entitled = entitled_query(meeting).subquery()
    rows = session.execute(select(Member, Attendance).join(entitled, entitled.c.id == Member.id)
                           .outerjoin(Attendance, and_(Attendance.member_id == Member.id,
                                                       Attendance.meeting_id == meeting.id))
                           .order_by(Member.last_name, Member.first_name)).all()
    out = [RegisterRow(m, a.response if a else Response.NONE, a.proposed if a else False, a.present if a else False,
                       a.source if a else "", a.id if a else None) for m, a in rows]
    apologies = sum(1 for r in out if r.response is Response.APOLOGIES and not r.proposed)
    declined = sum(1 for r in out if r.response is Response.NOT_ATTENDING)
    quorum = meeting.quorum if meeting.quorum is not None else current_app.config["QUORUM"]
    return Register(out, len(out) - apologies - declined, apologies, sum(1 for r in out if r.present), quorum)


class RegisterPerson(NamedTuple):
    """A member as the register shows them (plain columns, a page at a time)."""

    id: int
    first_name: str | None
    last_name: str | None
    membership_number: str | None

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p) or "(no name)"


_REGISTER_COLUMNS = (Member.id, Member.first_name, Member.last_name, Member.membership_number, Attendance.response,
                     Attendance.proposed, Attendance.present, Attendance.source, Attendance.id.label("attendance_id"))


def _register_rows(meeting: Meeting, stmt) -> list[RegisterRow]:
    return [RegisterRow(RegisterPerson(*r[:4]), r.response or Response.NONE, bool(r.proposed), bool(r.present),
                        r.source or "", r.attendance_id) for r in stmt]


def register_page(meeting: Meeting, cursor: Cursor, per_page: int, q: str = "") -> KeysetPage:
    """One page of the register, by name: RegisterRows of plain columns (an AGM's register is
    every member, so it is never loaded whole for the page). `q`: only members whose name or
    membership number holds each of its words."""
    stmt = entitled_query(meeting).with_only_columns(*_REGISTER_COLUMNS).outerjoin_from(
        Member, Attendance, and_(Attendance.member_id == Member.id, Attendance.meeting_id == meeting.id))
    for word in q.split()[:5]:
        pattern = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(or_(*(column.ilike(pattern, escape="\\") for column in
                                (Member.first_name, Member.last_name, Member.membership_number))))
    page = paginate(stmt, [Key(Member.last_name), Key(Member.first_name), Key(Member.id)], cursor, per_page,
                    count=False, rows=True)
    page.items = _register_rows(meeting, page.items)
    return page


def proposed_apologies(meeting: Meeting) -> list[RegisterRow]:
    """Apologies read from replies, waiting for an officer to confirm them (few: listed whole)."""
    stmt = select(*_REGISTER_COLUMNS).join_from(Member, Attendance, Attendance.member_id == Member.id).where(
        Attendance.meeting_id == meeting.id, Attendance.proposed.is_(True),
        Member.id.in_(entitled_query(meeting).with_only_columns(Member.id))).order_by(Member.last_name, Member.first_name, Member.id)
    return _register_rows(meeting, session.execute(stmt))


def entitled_member(meeting: Meeting, member_id: int | None) -> Member | None:
    """The member, if entitled to attend the meeting."""
    if member_id is None:
        return None
    return session.scalar(entitled_query(meeting).where(Member.id == member_id))


@dataclass
class RegisterSummary:
    """The register's counts, counted in SQL (an AGM's register is every member)."""

    entitled: int
    expected: int
    apologies: int
    present: int
    quorum: int
    attending: int = 0  # said "I'll be there"

    @property
    def quorate(self) -> bool | None:
        return None if not self.quorum else self.present >= self.quorum


def register_summary(meeting: Meeting) -> RegisterSummary:
    """What register() counts, without loading a row per entitled member; remembered until
    members or answers change (mailer.members.count_cache: an AGM's register is every member)."""
    key = ["register", meeting.id, meeting.entitled, meeting.branch_id]
    numbers = count_cache.remembered("meeting-count", key, lambda: _register_numbers(meeting))
    quorum = meeting.quorum if meeting.quorum is not None else current_app.config["QUORUM"]
    total, apologies, declined = numbers["entitled"], numbers["apologies"], numbers["declined"]
    return RegisterSummary(total, total - apologies - declined, apologies, numbers["present"], quorum,
                           numbers["attending"])


def _register_numbers(meeting: Meeting) -> dict:
    entitled = entitled_query(meeting).with_only_columns(Member.id)
    apology = and_(Attendance.response == Response.APOLOGIES, Attendance.proposed.is_(False))
    # The entitled counted on their own (an index can answer it), the answers from the meeting's
    # attendance rows (those who answered: few), not an outer join per entitled member.
    answers = (select(func.coalesce(func.sum(case((apology, 1), else_=0)), 0),
                      func.coalesce(func.sum(case((Attendance.response == Response.NOT_ATTENDING, 1), else_=0)), 0),
                      func.coalesce(func.sum(case((Attendance.present.is_(True), 1), else_=0)), 0),
                      func.coalesce(func.sum(case((Attendance.response == Response.ATTENDING, 1), else_=0)), 0))
               .where(Attendance.meeting_id == meeting.id, Attendance.member_id.in_(entitled.scalar_subquery())))
    counted = entitled.with_only_columns(func.count(Member.id)).scalar_subquery()
    row = session.execute(answers.add_columns(counted)).one()
    apologies, declined, present, attending, total = (int(v) for v in row)
    return {"entitled": total, "apologies": apologies, "declined": declined, "present": present,
            "attending": attending}


def mark_present(officer: Officer, meeting: Meeting, member_ids: set[int], shown: set[int] | None = None) -> None:
    """Record who is present, as ticked on the day: among the members `shown` (one page of the
    register), or the whole list when None. Not committed."""
    if meeting.status is MeetingStatus.CANCELLED:
        raise MeetingError("A cancelled meeting has no register.")
    among = entitled_query(meeting).with_only_columns(Member.id)
    if shown is not None:
        among = among.where(Member.id.in_(shown | member_ids))
    entitled = set(session.scalars(among))
    unknown = member_ids - entitled
    if unknown:
        raise MeetingError("Only entitled members can be marked present.")
    attendance = select(Attendance).where(Attendance.meeting_id == meeting.id)
    if shown is not None:
        attendance = attendance.where(Attendance.member_id.in_(entitled))
    existing = {a.member_id: a for a in session.scalars(attendance)}
    for member_id in entitled:
        row = existing.get(member_id)
        if row is None and member_id in member_ids:
            row = Attendance(meeting_id=meeting.id, member_id=member_id)
            session.add(row)
        if row is not None:
            row.present = member_id in member_ids
    audit.record("meeting.register", "meeting", meeting.id, {"present": [None, len(member_ids)]}, officer=officer)


# --- from the inbound side ------------------------------------------------------------------

APOLOGY_WORDS = ("apologies", "apology", "apologise", "apologize", "can't make it", "cannot make it",
                 "can't make the", "cannot attend", "can't attend", "unable to attend", "won't be able to",
                 "will not be able to", "not able to attend", "won't make it", "will miss", "regrets",
                 "send my apologies", "please pass on my apologies", "sorry i can't", "sorry, i can't")


def reads_as_apologies(text: str) -> bool:
    """True when a reply reads like apologies for absence, in common English wordings."""
    lowered = " ".join((text or "").lower().replace("’", "'").split())
    return any(word in lowered for word in APOLOGY_WORDS)


def from_inbound(message) -> Attendance | None:
    """A reply to a meeting's notice that reads as apologies is proposed as apologies (an officer
    confirms); an iCalendar REPLY is recorded as the member's answer."""
    if message.campaign_id is None or message.member_id is None:
        return None
    link = session.scalar(select(MeetingCampaign).where(MeetingCampaign.campaign_id == message.campaign_id))
    if link is None or link.meeting.status not in (MeetingStatus.NOTICED, MeetingStatus.PLANNED):
        return None
    member = session.get(Member, message.member_id)
    for attachment in message.attachments:
        if attachment.content_type.startswith("text/calendar") or attachment.filename.endswith(".ics"):
            for uid, _email, partstat in calendar.read_reply(attachment.data):
                if uid == link.meeting.ical_uid and partstat in ("ACCEPTED", "DECLINED", "TENTATIVE"):
                    response = {"ACCEPTED": Response.ATTENDING, "DECLINED": Response.APOLOGIES,
                                "TENTATIVE": Response.NONE}[partstat]
                    return record_response(link.meeting, member, response, "calendar", message.id)
    if reads_as_apologies(message.visible_text or message.full_text):
        return record_response(link.meeting, member, Response.APOLOGIES, "reply", message.id, proposed=True)
    return None
