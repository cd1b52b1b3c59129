"""Who comes: members' answers to a notice (their links, their calendars, apologies read from their
replies for an officer to confirm), and the register on the day with its quorum."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from flask import current_app
from itsdangerous import BadSignature
from sqlalchemy import and_, case, func, or_, select

from mailer import audit
from mailer.compose import personal
from mailer.db import session, utcnow
from mailer.members import count_cache
from mailer.meetings import calendar
from mailer.meetings.planning import entitled_query
from mailer.meetings.rules import MeetingError
from mailer.models import Attendance, Meeting, MeetingCampaign, MeetingStatus, Member, Officer, Response
from mailer.pagination import Cursor, Key, KeysetPage, paginate

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
