"""/api/v1/threads: the correspondence log, each thread's messages, replies and notes; answer,
mark actioned, assign."""

from __future__ import annotations

from flask import abort
from sqlalchemy.orm import selectinload

from mailer import scope
from mailer.api import bp, cursor, officer, page_links, problem, responses, spec
from mailer.api.schemas import Done, ThreadEntry, ThreadList, ThreadOut, ThreadSummary
from mailer.inputs import AssignIn, ReplyIn, StatusIn, ThreadQuery
from mailer.inbound import correspondence as service
from mailer.models import Thread, ThreadStatus
from mailer.pagination import Key, paginate


def _summary(t: Thread) -> dict:
    return dict(id=t.id, subject=t.subject, correspondent=t.correspondent, status=t.status.value,
                member_id=t.member_id, campaign_id=t.campaign_id,
                assigned_to=t.assigned_to.email if t.assigned_to else None, last_activity_at=t.last_activity_at)


def _entry(e) -> ThreadEntry:
    item = e.item
    if e.kind == "message":
        return ThreadEntry(kind="message", id=item.id, at=e.at, who=item.from_address or item.from_name or "",
                           subject=item.subject, text=item.visible_text or item.full_text or "",
                           message_kind=item.kind.value if item.kind else None)
    if e.kind == "reply":
        return ThreadEntry(kind="reply", id=item.id, at=e.at, who=item.officer.email if item.officer else "",
                           subject=item.subject, text=item.body)
    return ThreadEntry(kind="note", id=item.id, at=e.at, who=item.officer.email if item.officer else "",
                       subject=None, text=item.text)


def _visible(thread_id: int) -> Thread:
    thread = scope.get_thread(officer(), thread_id)
    if thread is None:
        abort(problem(404, "There is no such thread."))
    return thread


@bp.get("/threads")
@spec.validate(query=ThreadQuery, resp=responses(ThreadList), tags=["correspondence"])
def list_threads(query: ThreadQuery):
    """Threads you may see, newest first, with filters and search; follow Link: rel=next for more."""
    tq = service.ThreadQuery(status=ThreadStatus(query.status) if query.status else None, q=query.q,
                             assigned_to_id=officer().id if query.assigned_to_me else None)
    page = paginate(service.matching(officer(), tq).options(selectinload(Thread.assigned_to)),
                    [Key(Thread.id, descending=True)], cursor(query), query.limit, count=False)
    args = {k: v for k, v in query.model_dump(exclude={"after", "limit"}).items() if v not in (None, "", False)}
    return ThreadList(items=[ThreadSummary(**_summary(t)) for t in page]), 200, page_links(
        page, "api.list_threads", **args)


@bp.get("/threads/<int(max=2147483647):thread_id>")
@spec.validate(resp=responses(ThreadOut, 404), tags=["correspondence"])
def read_thread(thread_id: int):
    """A thread's newest stretch: its messages (trimmed to the sender's words), our replies and notes."""
    thread = _visible(thread_id)
    timeline, _page = service.timeline(thread)
    entries = [_entry(e) for e in timeline]
    service.mark_read(officer(), thread)
    return ThreadOut(**_summary(thread), entries=entries)


@bp.post("/threads/<int(max=2147483647):thread_id>/reply")
@spec.validate(json=ReplyIn, resp=responses(Done, 404, 409, status=202), tags=["correspondence"])
def reply_to_thread(thread_id: int, json: ReplyIn):
    """Answer by email (queued; the thread goes on with the answer)."""
    thread = _visible(thread_id)
    answered = scope.thread_message(thread, json.in_reply_to)
    if json.in_reply_to and answered is None:
        return problem(409, "That message is not in this thread.")
    answer = service.reply(officer(), thread, answered, json.body, with_quote=json.with_quote)
    return Done(detail=f"Your reply to {answer.to_address} is queued to be sent."), 202


@bp.post("/threads/<int(max=2147483647):thread_id>/status")
@spec.validate(json=StatusIn, resp=responses(Done, 404), tags=["correspondence"])
def set_thread_status(thread_id: int, json: StatusIn):
    """Mark the thread actioned, or as needing action again."""
    thread = _visible(thread_id)
    service.set_status(officer(), thread, json.status)
    return Done(detail=f"The thread is {json.status.replace('_', ' ')}.")


@bp.post("/threads/<int(max=2147483647):thread_id>/assign")
@spec.validate(json=AssignIn, resp=responses(Done, 404, 409), tags=["correspondence"])
def assign_thread(thread_id: int, json: AssignIn):
    """Give the thread to an officer who can see it (or to nobody)."""
    thread = _visible(thread_id)
    service.assign(officer(), thread, json.officer_id)
    return Done(detail=f"The thread is with {thread.assigned_to.email if thread.assigned_to else 'nobody'}.")
