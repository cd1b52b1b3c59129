"""The correspondence log: the threads officers read, answer and close, within their branch.

Views and (later) the JSON API call these functions; the rules live here. Branch scoping: a
branch secretary sees only threads, messages and bounces of their own branch; CLP roles see all.
What Mailer could not place in a branch (unmatched auto-replies, messages whose processing
failed) is for CLP roles only. Every officer action is audited: the log holds personal data.

Over 400 lines on purpose: it is the one service the correspondence pages and the API call (the
inbox, a thread, officers' replies, failed messages, bounces and reports to confirm), each
section a few functions over the same branch scope and audit; the pages and jobs name them as
correspondence.<function>. The officers' replies (sending, leases) are the first to move if it
grows.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import Select, and_, exists, func, or_, select, true, update
from sqlalchemy.orm import defer, joinedload, selectinload

from mailer import audit, scope, work
from mailer.db import session, utcnow
from mailer.errors import Refusal
from mailer.inbound import store
from mailer.mail import Verdict, envelope_sender, service_message, transport
from mailer.members.service import _contains
from mailer.pagination import Cursor, Key, KeysetPage, paginate
from mailer.search import inbound_condition, name_condition
from mailer.sending.batch import Lease
from mailer.models import (BounceEvent, Campaign, Delivery, EmailHealth, InboundAttachment, InboundKind,
                           InboundMessage, InboundStatus, Member, Officer, OutgoingReply, Thread, ThreadNote,
                           ThreadRead, ThreadStatus)

NOTE_MAX = 10_000
REPLY_MAX = 50_000
LONDON = ZoneInfo("Europe/London")  # how officers read times, in a quote as on the page
MAX_DEPTH = 6  # deeper replies are drawn at this depth: a long back-and-forth stays readable


class CorrespondenceError(Refusal):
    """An officer's request that cannot be done, with a message to show them."""


def get_reply(officer: Officer, reply_id: int) -> OutgoingReply | None:
    reply = session.get(OutgoingReply, reply_id)
    if reply is None or scope.get_thread(officer, reply.thread_id) is None:
        return None
    return reply


# --- the inbox ------------------------------------------------------------------------------

@dataclass
class ThreadQuery:
    """What the inbox shows: None/"" means no filter on that field."""

    status: ThreadStatus | None = ThreadStatus.NEEDS_ACTION
    campaign_id: int | None = None
    branch_id: int | None = None
    assigned_to_id: int | None = None
    unread: bool = False
    q: str = ""
    cursor: Cursor = field(default_factory=Cursor)


@dataclass
class ThreadRow:
    thread: Thread
    unread: bool
    messages: int
    latest: str  # the start of the newest message's trimmed text
    latest_from: str


def _unread_condition(officer: Officer):
    """True for threads with activity `officer` has not read."""
    read = select(ThreadRead.read_at).where(ThreadRead.thread_id == Thread.id,
                                            ThreadRead.officer_id == officer.id).scalar_subquery()
    return or_(read.is_(None), read < Thread.last_activity_at)


def _search(q: str):
    """Threads whose subject, correspondent or any message's sender or text contains `q`."""
    def like(column):
        # lower() on both sides ignores case; the text as typed too (SQLite folds ASCII only).
        return or_(func.lower(column).like(_contains(q.lower()), escape="\\"), column.like(_contains(q), escape="\\"))

    indexed = inbound_condition(InboundMessage, q)  # FTS5 / pg_trgm (mailer.search), or None: scan
    if indexed is not None:
        in_messages = Thread.id.in_(select(InboundMessage.thread_id).where(indexed))
    else:
        in_messages = exists().where(InboundMessage.thread_id == Thread.id,
                                     or_(like(InboundMessage.full_text), like(InboundMessage.visible_text),
                                         like(InboundMessage.from_name), like(InboundMessage.from_address)))
    in_member = Thread.member_id.in_(select(Member.id).where(name_condition(Member, q)))  # by index
    return or_(like(Thread.subject), like(Thread.correspondent), in_messages, in_member)


def _filtered(officer: Officer, tq: ThreadQuery) -> Select:
    stmt = scope.threads(officer)
    if tq.status is not None:
        stmt = stmt.where(Thread.status == tq.status)
    if tq.campaign_id:
        stmt = stmt.where(Thread.campaign_id == tq.campaign_id)
    if tq.branch_id:
        stmt = stmt.where(Thread.branch_id == tq.branch_id)
    if tq.assigned_to_id:
        stmt = stmt.where(Thread.assigned_to_id == tq.assigned_to_id)
    if tq.unread:
        stmt = stmt.where(_unread_condition(officer))
    q = " ".join(tq.q.split())
    if q:
        stmt = stmt.where(_search(q))
    return stmt


def list_threads(officer: Officer, tq: ThreadQuery, per_page: int = 50) -> KeysetPage:
    """One page of the threads `officer` may see matching `tq`, newest activity first, as ThreadRows."""
    unread = _unread_condition(officer).label("unread")
    page = paginate(_filtered(officer, tq).add_columns(unread)
                    .options(joinedload(Thread.member), joinedload(Thread.branch), joinedload(Thread.campaign),
                             joinedload(Thread.assigned_to)),
                    [Key(Thread.last_activity_at, descending=True), Key(Thread.id, descending=True)],
                    tq.cursor, per_page, rows=True)
    rows = page.items
    ids = [t.id for t, _ in rows]
    stats = session.execute(select(InboundMessage.thread_id, func.count(), func.max(InboundMessage.id)).where(
        InboundMessage.thread_id.in_(ids)).group_by(InboundMessage.thread_id)).all() if ids else []
    counts = {thread_id: n for thread_id, n, _ in stats}
    newest = {m.thread_id: m for m in session.scalars(select(InboundMessage).options(defer(InboundMessage.raw)).where(
        InboundMessage.id.in_([newest_id for _, _, newest_id in stats])))} if stats else {}
    items = []
    for thread, is_unread in rows:
        m = newest.get(thread.id)
        items.append(ThreadRow(thread, bool(is_unread), counts.get(thread.id, 0),
                               _snippet(m.visible_text or m.full_text) if m else "",
                               (m.from_name or m.from_address or "") if m else ""))
    page.items = items
    return page


def _snippet(text: str, length: int = 140) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= length else text[:length - 1].rstrip() + "…"


def filter_choices(officer: Officer) -> dict:
    """Campaigns and branches that have threads `officer` may see, and the officers one may assign."""
    campaigns = session.scalars(select(Campaign).where(Campaign.id.in_(
        scope.threads(officer, select(Thread.campaign_id).where(Thread.campaign_id.is_not(None)))))
        .order_by(Campaign.id.desc())).all()
    return {"campaigns": campaigns, "branches": scope.branches(officer),
            "officers": assignable(officer)}


def counts(officer: Officer) -> dict:
    """{status value: threads} and unread, within `officer`'s scope (for tabs and the nav badge)."""
    by_status = dict(session.execute(scope.threads(officer, select(Thread.status, func.count())
                                                   .group_by(Thread.status))).all())
    return {"needs_action": by_status.get(ThreadStatus.NEEDS_ACTION, 0),
            "actioned": by_status.get(ThreadStatus.ACTIONED, 0), "unread": unread_count(officer)}


def unread_count(officer: Officer) -> int:
    """Threads with activity `officer` has not read (one indexed count)."""
    return session.scalar(scope.threads(officer, select(func.count()).select_from(Thread)
                                        .where(_unread_condition(officer)))) or 0


def is_unread(officer: Officer, thread: Thread) -> bool:
    read = session.get(ThreadRead, (officer.id, thread.id))
    return read is None or read.read_at < thread.last_activity_at


def mark_read(officer: Officer, thread: Thread) -> None:
    """Record that `officer` has read `thread` as it stands now. Not committed."""
    read = session.get(ThreadRead, (officer.id, thread.id))
    now = max(utcnow(), thread.last_activity_at)
    if read is None:
        session.add(ThreadRead(officer_id=officer.id, thread_id=thread.id, read_at=now))
    else:
        read.read_at = now


# --- a thread -------------------------------------------------------------------------------

@dataclass
class Entry:
    """One item on a thread's timeline: an inbound message, an officer's reply, or a note."""

    kind: str  # "message", "reply", "note"
    item: InboundMessage | OutgoingReply | ThreadNote
    at: datetime
    depth: int = 0


THREAD_PAGE = 50  # messages of a long thread shown at once


def _depths(thread: Thread, replies: list[OutgoingReply]) -> tuple[dict, dict]:
    """Each message's and reply's depth in the conversation (from parent_id; an answer to one of
    our replies sits under that reply), from the ids of the whole thread, however long."""
    links = session.execute(select(InboundMessage.id, InboundMessage.parent_id, InboundMessage.in_reply_to)
                            .where(InboundMessage.thread_id == thread.id)).all()
    ids = {mid for mid, _p, _r in links}
    reply_by_mid = {r.message_id: r for r in replies}
    parent_of: dict[tuple[str, int], tuple[str, int] | None] = {}
    for mid, parent_id, in_reply_to in links:
        if in_reply_to in reply_by_mid:
            parent_of[("message", mid)] = ("reply", reply_by_mid[in_reply_to].id)
        else:
            parent_of[("message", mid)] = ("message", parent_id) if parent_id in ids else None
    for r in replies:
        parent_of[("reply", r.id)] = ("message", r.in_reply_to_id) if r.in_reply_to_id in ids else None

    def depth(key, seen=()) -> int:
        parent = parent_of.get(key)
        if parent is None or parent in seen or len(seen) >= MAX_DEPTH:
            return 0
        return 1 + depth(parent, (*seen, key))

    return ({mid: depth(("message", mid)) for mid in ids}, {r.id: depth(("reply", r.id)) for r in replies})


def timeline(thread: Thread, cursor: Cursor | None = None, per_page: int = THREAD_PAGE) -> tuple[list[Entry], KeysetPage]:
    """One page of the thread: its inbound messages (oldest first; the newest page unless
    `cursor` says otherwise), with the officers' replies and notes from the same stretch of time.
    Raw messages stay in the database: a page never loads them."""
    if cursor is None or not (cursor.after or cursor.before or cursor.start):
        cursor = Cursor(last=True)  # a thread opens at its newest messages
    page = paginate(select(InboundMessage).where(InboundMessage.thread_id == thread.id)
                    .options(defer(InboundMessage.raw), selectinload(InboundMessage.attachments).defer(
                        InboundAttachment.data), selectinload(InboundMessage.member)),
                    [Key(InboundMessage.received_at), Key(InboundMessage.id)], cursor, per_page, count=True)
    inbound = page.items
    # The stretch of time the page covers: from its first message (everything before, on the
    # first page) up to the next page's first message (everything after, on the last).
    start = inbound[0].received_at if inbound and not page.first else None
    end = None
    if inbound and not page.at_end:
        last = inbound[-1]
        end = session.scalar(select(InboundMessage.received_at).where(
            InboundMessage.thread_id == thread.id,
            or_(InboundMessage.received_at > last.received_at,
                and_(InboundMessage.received_at == last.received_at, InboundMessage.id > last.id)))
            .order_by(InboundMessage.received_at, InboundMessage.id).limit(1))

    def within(column):
        return and_(true() if start is None else column >= start, true() if end is None else column < end)

    all_replies = session.scalars(select(OutgoingReply).where(OutgoingReply.thread_id == thread.id)
                                  .options(selectinload(OutgoingReply.officer))
                                  .order_by(OutgoingReply.created_at, OutgoingReply.id)).all()
    message_depth, reply_depth = _depths(thread, all_replies)
    replies = [r for r in all_replies if (start is None or r.created_at >= start) and (end is None or r.created_at < end)]
    notes = session.scalars(select(ThreadNote).where(ThreadNote.thread_id == thread.id, within(ThreadNote.at))
                            .options(selectinload(ThreadNote.officer)).order_by(ThreadNote.at, ThreadNote.id)).all()
    entries = [Entry("message", m, m.received_at, message_depth.get(m.id, 0)) for m in inbound]
    entries += [Entry("reply", r, r.created_at, reply_depth.get(r.id, 0)) for r in replies]
    entries = sorted(entries, key=lambda e: (e.at, e.kind != "message"))
    return sorted([*entries, *(Entry("note", n, n.at) for n in notes)], key=lambda e: e.at), page


def last_inbound(thread: Thread) -> InboundMessage | None:
    """The newest message in the thread: what a reply answers unless told otherwise."""
    return session.scalar(select(InboundMessage).where(InboundMessage.thread_id == thread.id)
                          .order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc()).limit(1))


def set_status(officer: Officer, thread: Thread, status: ThreadStatus | str) -> None:
    """Mark the thread actioned or needing action. Not committed."""
    status = ThreadStatus(status)
    if thread.status is not status:
        audit.record("correspondence.status", "thread", thread.id, {"status": [thread.status.value, status.value]},
                     officer=officer)
        thread.status = status


def assignable(officer: Officer, thread: Thread | None = None) -> list[Officer]:
    """Active officers who could take a thread (who can see it, for a given thread)."""
    stmt = select(Officer).where(Officer.active.is_(True)).order_by(Officer.name, Officer.email)
    branch_id = thread.branch_id if thread is not None else scope.own_branch_id(officer)
    return scope.officers_who_see(session.scalars(stmt).all(), branch_id)


def assign(officer: Officer, thread: Thread, officer_id: int | None) -> None:
    """Give the thread to an officer who can see it (None: to nobody). Not committed."""
    assignee = None
    if officer_id:
        assignee = session.get(Officer, officer_id)
        if assignee is None or assignee not in assignable(officer, thread):
            raise CorrespondenceError("That officer cannot take this thread: they cannot see its branch.")
    if thread.assigned_to_id != (assignee.id if assignee else None):
        audit.record("correspondence.assign", "thread", thread.id,
                     {"assigned_to": [thread.assigned_to.email if thread.assigned_to else None,
                                      assignee.email if assignee else None]}, officer=officer)
        thread.assigned_to = assignee


def add_note(officer: Officer, thread: Thread, text: str) -> ThreadNote:
    """An internal note, never sent. Not committed."""
    text = (text or "").strip()
    if not text:
        raise CorrespondenceError("Write the note first.")
    if len(text) > NOTE_MAX:
        raise CorrespondenceError(f"A note can be at most {NOTE_MAX:,} characters.")
    note = ThreadNote(thread_id=thread.id, officer_id=officer.id, text=text)
    session.add(note)
    session.flush()
    audit.record("correspondence.note", "thread", thread.id, note=f"note {note.id}", officer=officer)
    return note


# --- replies ----------------------------------------------------------------------------------

def reply_subject(subject: str) -> str:
    """"Re: " once in front of the subject answered."""
    subject = " ".join((subject or "").split()) or "(no subject)"
    return subject if re.match(r"^re\s*:", subject, re.I) else f"Re: {subject}"


def quote(message: InboundMessage) -> str:
    """The message's visible text quoted as a mail client would, for the reply's end."""
    who = message.from_name or message.from_address or "they"
    when = message.sent_at or message.received_at
    lines = (message.visible_text or message.full_text or "").strip().splitlines()
    head = f"On {when.astimezone(LONDON):%a %d %b %Y at %H:%M}, {who} wrote:" if when else f"{who} wrote:"
    return head + "\n" + "\n".join(f"> {line}" if line else ">" for line in lines)


def _id_domain() -> str:
    cfg = current_app.config
    return cfg["MESSAGE_ID_DOMAIN"] or cfg["SENDER_ADDRESS"].rpartition("@")[2] or "localhost"


def reply(officer: Officer, thread: Thread, in_reply_to: InboundMessage | None, body: str,
          with_quote: bool = False) -> OutgoingReply:
    """Answer the thread by email: recorded, and queued once the caller commits (the request never
    waits on SMTP). `in_reply_to` is the message answered (None: the newest in the thread)."""
    body = (body or "").strip()
    if not body:
        raise CorrespondenceError("Write the reply first.")
    if len(body) > REPLY_MAX:
        raise CorrespondenceError(f"A reply can be at most {REPLY_MAX:,} characters.")
    in_reply_to = in_reply_to or last_inbound(thread)
    if in_reply_to is not None and in_reply_to.thread_id != thread.id:
        raise CorrespondenceError("That message is not in this thread.")
    to_address = (in_reply_to.from_address if in_reply_to is not None else "") or thread.correspondent
    if not to_address:
        raise CorrespondenceError("There is no address to reply to.")
    if with_quote and in_reply_to is not None:
        body = f"{body}\n\n{quote(in_reply_to)}"
    answer = OutgoingReply(thread_id=thread.id, in_reply_to_id=in_reply_to.id if in_reply_to else None,
                           officer_id=officer.id, to_address=to_address,
                           message_id=f"<reply.{thread.id}.{secrets.token_hex(8)}@{_id_domain()}>",
                           subject=reply_subject(in_reply_to.subject if in_reply_to else thread.subject)[:500],
                           body=body)
    session.add(answer)
    thread.last_activity_at = utcnow()
    session.flush()
    audit.record("correspondence.reply", "thread", thread.id, {"to": [None, to_address]},
                 note=f"reply {answer.id}: {answer.subject}"[:500], officer=officer)
    mark_read(officer, thread)  # one's own reply is not news to oneself
    _enqueue_send(answer)
    return answer


def resend(officer: Officer, answer: OutgoingReply) -> None:
    """Queue a reply that was not sent (a refusal, or the queue was away) once more."""
    if answer.sent_at is not None:
        raise CorrespondenceError("That reply has already been sent.")
    answer.error = None
    audit.record("correspondence.resend", "thread", answer.thread_id, note=f"reply {answer.id}", officer=officer)
    _enqueue_send(answer)


def _enqueue_send(answer: OutgoingReply) -> None:
    """Queue the send after the commit (Redis away: the reply is kept unsent, and reconcile queues it)."""
    work.after_commit("send_reply", answer.id)


def unsent_replies() -> list[int]:
    """For reconcile: the replies not sent, not refused for good, and not held by a live job (its
    claim, in the database: RQ's started registry is emptied by a FLUSHALL while the job runs on)."""
    return list(session.scalars(select(OutgoingReply.id).where(
        OutgoingReply.sent_at.is_(None),
        or_(OutgoingReply.error.is_(None), OutgoingReply.error.not_like("Refused%")),
        or_(OutgoingReply.lease_until.is_(None), OutgoingReply.lease_until < utcnow()))))


def build_reply(answer: OutgoingReply) -> bytes:
    """The reply as it goes out (before the transport signs it): plain text, from the sender,
    threaded onto the message answered."""
    msg = service_message(answer.to_address, answer.subject, answer.body, message_id=answer.message_id,
                          date=answer.created_at)
    parent = session.get(InboundMessage, answer.in_reply_to_id) if answer.in_reply_to_id else None
    if parent is not None and parent.message_id:
        msg["In-Reply-To"] = parent.message_id
        refs = [r for r in (parent.references or []) if r != parent.message_id] + [parent.message_id]
        msg["References"] = " ".join(refs[-20:])  # the root and the most recent: enough for any client
    return msg.as_bytes()


class TemporaryFailure(Exception):
    """The relay could not take the reply now: RQ tries again later."""


def send_reply(reply_id: int) -> str:
    """The job: send one officer's reply through the mail transport; record sent_at or the error.
    The reply is claimed first (a conditional update, as a batch claims its rows), so two jobs,
    whatever Redis remembers, never send it at once; a job killed mid-way leaves it for reconcile
    once its lease runs out. Only a reply on the wire when its job died can go twice. (A job's body,
    not a service: the claim, the send and the failure are each committed here, as the lease needs.)"""
    lease = _claim_reply(reply_id)
    answer = session.get(OutgoingReply, reply_id)
    if answer is None:
        return "gone"
    if answer.sent_at is not None:
        return "already sent"
    if lease is None:
        return "being sent by another job"
    try:
        lease.start()
        data = build_reply(answer)
        lease.check()
        result = transport().send(envelope_sender(), [answer.to_address], data)[answer.to_address]
        if result.accepted:  # a failed QUIT after the relay took it is still a sent reply
            _reply_sent(reply_id)
            return "sent"
        permanent = result.verdict is Verdict.PERMANENT
        answer.error = f"{'Refused' if permanent else 'Not sent yet'}: {result}"[:1000]
        session.commit()
        if permanent:
            return "failed"
        raise TemporaryFailure(answer.error)
    finally:
        lease.stop()
        _release_reply(lease)


class ReplyLease(Lease):
    """A job's hold on the reply it sends: its fencing token, renewed while the job lives."""

    def renewal(self):
        return (update(OutgoingReply).where(OutgoingReply.claimed_by == self.owner, OutgoingReply.sent_at.is_(None))
                .values(lease_until=self.until()))


def _claim_reply(reply_id: int) -> ReplyLease | None:
    """Hold the reply for this job (a Lease whose heartbeat renews it), or None: sent already, or
    held by a job whose lease has not run out."""
    lease, now = ReplyLease(current_app.config["BATCH_LOCK_TTL"]), utcnow()
    claimed = session.execute(update(OutgoingReply).where(
        OutgoingReply.id == reply_id, OutgoingReply.sent_at.is_(None),
        or_(OutgoingReply.lease_until.is_(None), OutgoingReply.lease_until < now))
        .values(claimed_by=lease.owner, lease_until=lease.until())
        .execution_options(synchronize_session=False)).rowcount
    session.commit()
    lease.claimed()
    return lease if claimed else None


def _reply_sent(reply_id: int) -> None:
    session.execute(update(OutgoingReply).where(OutgoingReply.id == reply_id, OutgoingReply.sent_at.is_(None))
                    .values(sent_at=utcnow(), error=None, claimed_by=None, lease_until=None)
                    .execution_options(synchronize_session=False))
    session.commit()


def _release_reply(lease: ReplyLease) -> None:
    """Let go of a reply not sent (an error): reconcile or RQ's retry may try it at once."""
    try:
        session.rollback()
        session.execute(update(OutgoingReply).where(OutgoingReply.claimed_by == lease.owner)
                        .values(claimed_by=None, lease_until=None).execution_options(synchronize_session=False))
        session.commit()
    except Exception:  # noqa: BLE001 - the database away: the lease runs out by itself
        session.rollback()


# --- processing failures, bounces, auto-replies -------------------------------------------------

@dataclass
class FailedRow:
    message: InboundMessage
    subject: str  # read from the raw headers: processing never got as far as filling them in
    sender: str


def failed_messages(officer: Officer, cursor: Cursor | None = None, per_page: int = 50) -> KeysetPage:
    """Messages whose processing failed, as FailedRows (CLP roles only: unprocessed mail has no branch)."""
    if not scope.sees_all(officer):
        return KeysetPage([], per_page, 0)
    stmt = select(InboundMessage).where(InboundMessage.status == InboundStatus.FAILED)
    result = paginate(stmt, _NEWEST_MESSAGES, cursor or Cursor(), per_page)
    result.items = [FailedRow(m, *_subject_and_sender(m)) for m in result.items]
    return result


def _subject_and_sender(message: InboundMessage) -> tuple[str, str]:
    if message.subject or message.from_address:
        return message.subject, message.from_address or ""
    try:
        headers = BytesHeaderParser(policy=default_policy).parsebytes(message.raw[:64 * 1024])
        return str(headers.get("Subject", ""))[:300], str(headers.get("From", ""))[:300]
    except Exception:  # noqa: BLE001 - the headers may be what broke processing: show what we have
        return "", ""


def retry_processing(officer: Officer, message: InboundMessage) -> None:
    """Queue a failed message's processing again."""
    if message.status is not InboundStatus.FAILED:
        raise CorrespondenceError("Only a message whose processing failed can be retried.")
    message.status = InboundStatus.RECEIVED
    audit.record("correspondence.retry", "inbound_message", message.id, note=(message.error or "")[-300:],
                 officer=officer)
    store.enqueue_processing(message.id)


_NEWEST_MESSAGES = [Key(InboundMessage.received_at, descending=True), Key(InboundMessage.id, descending=True)]


@dataclass
class BounceRow:
    event: BounceEvent
    member: Member | None
    campaign: Campaign | None


def bounce_events(officer: Officer, cursor: Cursor | None = None, per_page: int = 50,
                  campaign_id: int | None = None) -> KeysetPage:
    """Bounce events, newest first, with their member and campaign, within `officer`'s scope."""
    stmt = (select(BounceEvent, Member, Campaign)
            .outerjoin(Member, Member.id == BounceEvent.member_id)
            .outerjoin(Delivery, Delivery.id == BounceEvent.delivery_id)
            .outerjoin(Campaign, Campaign.id == Delivery.campaign_id)
            .where(scope.member_condition(BounceEvent.member_id, officer)))
    if campaign_id:
        stmt = stmt.where(Delivery.campaign_id == campaign_id)
    page = paginate(stmt, [Key(BounceEvent.at, descending=True), Key(BounceEvent.id, descending=True)],
                    cursor or Cursor(), per_page, rows=True)
    page.items = [BounceRow(*r) for r in page.items]
    return page


def reports_to_confirm(officer: Officer, limit: int = 100) -> list[InboundMessage]:
    """Bounces and complaints that named addresses but carried nothing we sent: nobody was held or
    unsubscribed; a CLP officer confirms them (CLP roles only: anyone can name any member)."""
    from mailer.inbound.reports import UNCONFIRMED

    if not scope.sees_all(officer):
        return []
    return list(session.scalars(select(InboundMessage).where(
        InboundMessage.match_method == UNCONFIRMED,
        InboundMessage.kind.in_([InboundKind.BOUNCE, InboundKind.COMPLAINT]))
        .order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc()).limit(limit)))


def on_hold(officer: Officer, limit: int = 100) -> KeysetPage:
    """Members whose address is on hold after bounces, to correct in the membership system: the
    first `limit` by name (with their branches, loaded alongside) and how many there are."""
    stmt = scope.members(officer, select(Member).where(Member.email_health == EmailHealth.ON_HOLD)) \
        .options(selectinload(Member.branch))
    return paginate(stmt, [Key(Member.last_name), Key(Member.first_name), Key(Member.id)], Cursor(), limit)


def auto_replies(officer: Officer, cursor: Cursor | None = None, per_page: int = 50) -> KeysetPage:
    """Auto-replies (out of office and the like), newest first: recorded, never threaded or answered."""
    stmt = (select(InboundMessage).where(InboundMessage.kind == InboundKind.AUTO_REPLY,
                                         scope.member_condition(InboundMessage.member_id, officer))
            .options(joinedload(InboundMessage.member), joinedload(InboundMessage.campaign)))
    return paginate(stmt, _NEWEST_MESSAGES, cursor or Cursor(), per_page)


def download_audit(officer: Officer, what: str, message: InboundMessage, note: str = "") -> None:
    """Personal data leaving the system as a file (a raw message, an attachment) is recorded."""
    audit.record(f"correspondence.download_{what}", "inbound_message", message.id, note=note[:500], officer=officer)


# --- for the campaign page ------------------------------------------------------------------------

def replies_and_bounces(campaign: Campaign, officer: Officer | None = None, recent: int = 10) -> dict:
    """What came back from a campaign: counts, the most recent threads and bounce events.
    Pass the officer to keep to their branch (a branch secretary)."""
    thread_scope = scope.branch_condition(Thread.branch_id, officer) if officer is not None else true()
    member_scope = scope.member_condition(BounceEvent.member_id, officer) if officer is not None else true()
    threads = select(Thread).where(Thread.campaign_id == campaign.id, thread_scope)
    by_status = dict(session.execute(select(Thread.status, func.count()).where(
        Thread.campaign_id == campaign.id, thread_scope).group_by(Thread.status)).all())
    replies = session.scalar(select(func.count()).select_from(InboundMessage).join(
        Thread, Thread.id == InboundMessage.thread_id).where(Thread.campaign_id == campaign.id, thread_scope))
    message_scope = scope.member_condition(InboundMessage.member_id, officer) if officer is not None else true()
    kinds = dict(session.execute(select(InboundMessage.kind, func.count()).where(
        InboundMessage.campaign_id == campaign.id, InboundMessage.thread_id.is_(None), message_scope)
        .group_by(InboundMessage.kind)).all())
    bounce_stmt = (select(BounceEvent).join(Delivery, Delivery.id == BounceEvent.delivery_id)
                   .where(Delivery.campaign_id == campaign.id, member_scope))
    hard = dict(session.execute(select(BounceEvent.hard, func.count()).join(
        Delivery, Delivery.id == BounceEvent.delivery_id).where(Delivery.campaign_id == campaign.id, member_scope)
        .group_by(BounceEvent.hard)).all())
    return {
        "counts": {"threads": sum(by_status.values()), "replies": replies or 0,
                   "needs_action": by_status.get(ThreadStatus.NEEDS_ACTION, 0),
                   "actioned": by_status.get(ThreadStatus.ACTIONED, 0),
                   "auto_replies": kinds.get(InboundKind.AUTO_REPLY, 0),
                   "complaints": kinds.get(InboundKind.COMPLAINT, 0),
                   "hard_bounces": hard.get(True, 0), "soft_bounces": hard.get(False, 0)},
        "threads": session.scalars(threads.options(joinedload(Thread.member))
                                   .order_by(Thread.last_activity_at.desc()).limit(recent)).all(),
        "bounces": session.scalars(bounce_stmt.order_by(BounceEvent.at.desc()).limit(recent)).all(),
    }



def matching(officer: Officer, tq: ThreadQuery) -> Select:
    """SELECT of the threads `officer` may see that match `tq` (filters and search), unordered."""
    return _filtered(officer, tq)
