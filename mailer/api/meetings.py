"""/api/v1/meetings: plan a meeting, set its agenda, send its notice, keep its register; and its
minutes: read, approve (the chair), circulate. The notice-period rules and roles are the services'."""

from __future__ import annotations

from flask import abort

from mailer import scope
from mailer.api import bp, cursor, officer, page_links, problem, responses, spec
from mailer.api.schemas import Done, MeetingList, MeetingOut, MeetingSummary, MinutesOut, RegisterOut
from mailer.inputs import AgendaIn, MeetingIn, NoticeIn, PageQuery, PresentIn, RegisterQuery
from mailer.db import session
from mailer.meetings import minutes as minutes_service
from mailer.meetings import service
from mailer.models import Meeting, Minutes
from mailer.pagination import Key, paginate


def _out(meeting: Meeting, warnings: list[str] | None = None) -> MeetingOut:
    return MeetingOut(id=meeting.id, title=meeting.title, kind=meeting.kind.value, status=meeting.status.value,
                      branch_id=meeting.branch_id, starts_at=meeting.starts_at, ends_at=meeting.ends_at,
                      venue_name=meeting.venue_name, venue_address=meeting.venue_address,
                      online_url=meeting.online_url, warnings=warnings or [],
                      agenda=[{"id": i.id, "position": i.position, "title": i.title, "notes": i.notes or ""}
                              for i in meeting.agenda])


def _visible(meeting_id: int) -> Meeting:
    meeting = scope.get_meeting(officer(), meeting_id)
    if meeting is None:
        abort(problem(404, "There is no such meeting."))
    return meeting


def _minutes_of(meeting_id: int) -> Minutes:
    meeting = _visible(meeting_id)
    if meeting.minutes is None:
        abort(problem(404, "This meeting has no minutes yet."))
    return meeting.minutes


@bp.get("/meetings")
@spec.validate(query=PageQuery, resp=responses(MeetingList), tags=["meetings"])
def list_meetings(query: PageQuery):
    """Meetings you may see, newest first; follow Link: rel=next for more."""
    page = paginate(scope.meetings(officer()), [Key(Meeting.id, descending=True)], cursor(query), query.limit,
                    count=False)
    items = [MeetingSummary(id=m.id, title=m.title, kind=m.kind.value, status=m.status.value, starts_at=m.starts_at)
             for m in page]
    return MeetingList(items=items), 200, page_links(page, "api.list_meetings")


@bp.post("/meetings")
@spec.validate(json=MeetingIn, resp=responses(MeetingOut, 409, status=201), tags=["meetings"])
def create_meeting(json: MeetingIn):
    """Plan a meeting, with the default agenda for its kind; a clash with another is a warning."""
    meeting, warnings = service.create(officer(), json.values())
    session.flush()
    return _out(meeting, warnings), 201


@bp.get("/meetings/<int(max=2147483647):meeting_id>")
@spec.validate(resp=responses(MeetingOut, 404), tags=["meetings"])
def read_meeting(meeting_id: int):
    """A meeting and its agenda."""
    return _out(_visible(meeting_id))


@bp.put("/meetings/<int(max=2147483647):meeting_id>/agenda")
@spec.validate(json=AgendaIn, resp=responses(MeetingOut, 404, 409), tags=["meetings"])
def set_agenda(meeting_id: int, json: AgendaIn):
    """Replace the agenda with these items, in order."""
    meeting = _visible(meeting_id)
    service.set_agenda(officer(), meeting, [item.model_dump() for item in json.items])
    return _out(meeting)


@bp.post("/meetings/<int(max=2147483647):meeting_id>/notice")
@spec.validate(json=NoticeIn, resp=responses(Done, 404, 409), tags=["meetings"])
def send_notice(meeting_id: int, json: NoticeIn):
    """Send the formal notice to everyone entitled; refused, with the reason, when the rules'
    notice period can no longer be met (unless an override reason is given)."""
    meeting = _visible(meeting_id)
    service.send_notice(officer(), meeting, json.override)
    return Done(detail="The notice is being sent to everyone entitled to attend.")


@bp.get("/meetings/<int(max=2147483647):meeting_id>/register")
@spec.validate(query=RegisterQuery, resp=responses(RegisterOut, 404), tags=["meetings"])
def read_register(meeting_id: int, query: RegisterQuery):
    """The counts and the quorum, and one page of the entitled members (by name) with their answer
    and presence; follow Link: rel=next for the next page (an AGM's register is every member)."""
    return _register(_visible(meeting_id), query)


def _register(meeting: Meeting, query: RegisterQuery | None = None):
    query = query or RegisterQuery()
    summary = service.register_summary(meeting)
    page = service.register_page(meeting, cursor(query), query.limit)
    out = RegisterOut(entitled=summary.entitled, expected=summary.expected, apologies=summary.apologies,
                      present=summary.present, quorum=summary.quorum, quorate=summary.quorate,
                      rows=[{"member_id": r.member.id, "name": " ".join(p for p in (r.member.first_name, r.member.last_name) if p), "response": r.response.value,
                             "present": r.present} for r in page])
    return out, 200, page_links(page, "api.read_register", meeting_id=meeting.id)


@bp.put("/meetings/<int(max=2147483647):meeting_id>/register")
@spec.validate(json=PresentIn, resp=responses(RegisterOut, 404, 409), tags=["meetings"])
def mark_present(meeting_id: int, json: PresentIn):
    """Record who is present: the whole list, as ticked on the day. Answers as the register's first page."""
    meeting = _visible(meeting_id)
    service.mark_present(officer(), meeting, set(json.present))
    session.flush()
    return _register(meeting)


@bp.get("/meetings/<int(max=2147483647):meeting_id>/minutes")
@spec.validate(resp=responses(MinutesOut, 404), tags=["minutes"])
def read_minutes(meeting_id: int):
    """The meeting's minutes, item by item, and where they are in their life."""
    m = _minutes_of(meeting_id)
    return MinutesOut(meeting_id=meeting_id, status=m.status.value, present=m.present_text or "",
                      items=[{"title": i.title, "text": i.text or ""} for i in m.items],
                      approved_at=m.approved_at, circulated_at=m.circulated_at)


@bp.post("/meetings/<int(max=2147483647):meeting_id>/minutes/approve")
@spec.validate(resp=responses(Done, 404, 409), tags=["minutes"])
def approve_minutes(meeting_id: int):
    """The chair approves the draft minutes."""
    minutes_service.approve(officer(), _minutes_of(meeting_id))
    return Done(detail="The minutes are approved.")


@bp.post("/meetings/<int(max=2147483647):meeting_id>/minutes/circulate")
@spec.validate(resp=responses(Done, 404, 409), tags=["minutes"])
def circulate_minutes(meeting_id: int):
    """Send the approved minutes to the meeting's members, with a web copy and a PDF."""
    minutes_service.circulate(officer(), _minutes_of(meeting_id))
    return Done(detail="The minutes are being sent to the meeting's members.")
