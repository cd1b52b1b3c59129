"""Processing one stored message: parse, classify, match, then act on what it is.

- reply (and other human mail): threaded — first the signed reply token in To, Cc, Delivered-To
  or X-Original-To; then In-Reply-To and References, last to first, against our outgoing and
  stored incoming Message-IDs; then a conservative guess (same sender, same subject, recent),
  marked as a guess. Anything else starts a new thread. A reply that arrived before its parent is
  moved under the parent when the parent arrives.
- bounce: matched to the Delivery by something we sent (the bounce or reply token, or our
  Message-ID in the returned headers); hard bounces hold the address at once, soft ones after
  SOFT_BOUNCE_LIMIT within SOFT_BOUNCE_DAYS.
- complaint: tied the same way, bulletins are suppressed for the address at once.
  A bounce or complaint is a stranger's claim: one that only names an address (anyone can write
  a report naming any member) acts on no one. It is flagged and listed for a CLP officer to
  confirm (confirm_report), and acts only then.
- auto-reply and loop: recorded and linked, never threaded, never answered.
Idempotent: processing the same message again replaces what the last run derived.
"""

from __future__ import annotations

import dataclasses
import re
import traceback
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import defer

from mailer import audit, scope
from mailer.db import session, storable, utcnow
from mailer.errors import Refusal
from mailer.inbound.classify import FAILED_ACTIONS, Classification, classify, own_identity
from mailer.inbound.lookups import Lookups
from mailer.inbound.parse import ParsedMessage, parse
from mailer.inbound.sanitize import sanitize_inbound_html
from mailer.inbound.trim import trim_message
from mailer.members import consent
from mailer.models import (BounceEvent, Campaign, Delivery, EmailHealth, InboundAttachment, InboundKind,
                           InboundMessage, InboundStatus, Member, MessageReference, OutgoingReply, Stream, Suppression,
                           SuppressionReason, Thread, ThreadStatus)
from mailer.sending.tokens import read_address_token

_SUBJECT_PREFIX = re.compile(r"^\s*((re|fw|fwd|aw|wg|sv|vs|tr|rv|r|ref|antw|odp|pd|vá|ynt|ats)\s*(\[\d+\])?\s*:\s*)+",
                             re.IGNORECASE)


def normalise_subject(subject: str) -> str:
    """"Re: Fwd: AW: Branch meeting" -> "branch meeting": what a guess compares."""
    return " ".join(_SUBJECT_PREFIX.sub("", subject or "").split()).lower()[:300]


def process(message_id: int) -> str:
    """The job: process one stored message; a failure is recorded on it, never lost. The message
    is claimed first (for a lease of twice BATCH_LOCK_TTL), so two jobs never process it at once;
    a job killed mid-way leaves it RECEIVED, all or nothing, for reconcile to queue again once the
    claim has run out. A database that goes away mid-way is an error to retry, not the message's.
    (The job's body, not a service: the claim, the outcome and a failure are each committed here,
    as the lease protocol needs; mailer.jobs.process_inbound runs it.)"""
    now = utcnow()
    lease = timedelta(seconds=2 * current_app.config["BATCH_LOCK_TTL"])
    claimed = session.execute(update(InboundMessage).where(
        InboundMessage.id == message_id, InboundMessage.status != InboundStatus.PROCESSED,
        or_(InboundMessage.claimed_until.is_(None), InboundMessage.claimed_until < now))
        .values(claimed_until=now + lease, attempts=InboundMessage.attempts + 1)
        .execution_options(synchronize_session=False)).rowcount
    session.commit()
    message = session.get(InboundMessage, message_id)
    if message is None:
        return "gone"
    if message.status is InboundStatus.PROCESSED:
        return "already processed"
    if not claimed:
        return "being processed by another job"
    try:
        global _current
        _current = Lookups()
        try:
            _process(message, reprocessing=message.processed_at is not None)
        finally:
            _current = None
        message.status, message.error, message.processed_at = InboundStatus.PROCESSED, None, utcnow()
        message.claimed_until = None
        session.commit()
        return message.kind.value
    except OperationalError:  # the database away: the job is retried (the claim lapses meanwhile)
        session.rollback()
        raise
    except Exception:  # noqa: BLE001 - the message is kept and flagged, to be retried from the browser
        session.rollback()
        message = session.get(InboundMessage, message_id)
        message.status, message.error = InboundStatus.FAILED, traceback.format_exc(limit=8)[-4000:]
        message.claimed_until = None
        session.commit()
        current_app.logger.exception("processing inbound message %s failed", message_id)
        return "failed"


def process_many(message_ids: list[int]) -> dict[str, int]:
    """Process several stored messages as one job, in one transaction: the batch is claimed with
    one UPDATE and one commit, the messages loaded with one SELECT (their raw bytes per part of at
    most READ_AHEAD_BYTES), read (parsed, classified) part by part, what they name looked up once
    for the part (mailer.inbound.lookups), then each processed inside its own savepoint (a failure
    rolls back that message alone, and its changes to the look-ups, and is recorded on it), and
    all committed together. The per-message claim and commits, then the per-message look-ups,
    were most of the processing time.

    The guarantees of process() hold: a message is claimed before it is read, so two jobs never
    process it at once; a job killed mid-way commits nothing, and its messages stay RECEIVED for
    reconcile once the claim has run out; a database that goes away is an error to retry."""
    outcomes: dict[str, int] = {}

    def count(outcome: str) -> None:
        outcomes[outcome] = outcomes.get(outcome, 0) + 1

    if not message_ids:
        return outcomes
    now = utcnow()
    lease = timedelta(seconds=2 * current_app.config["BATCH_LOCK_TTL"])
    claimable = (InboundMessage.id.in_(message_ids), InboundMessage.status != InboundStatus.PROCESSED,
                 or_(InboundMessage.claimed_until.is_(None), InboundMessage.claimed_until < now))
    claimed = set(session.scalars(update(InboundMessage).where(*claimable)
                                  .values(claimed_until=now + lease, attempts=InboundMessage.attempts + 1)
                                  .returning(InboundMessage.id).execution_options(synchronize_session=False)).all())
    session.commit()
    loaded = {m.id: m for m in session.scalars(select(InboundMessage).options(defer(InboundMessage.raw))
                                               .where(InboundMessage.id.in_(message_ids)))}
    todo = []
    for message_id in message_ids:
        message = loaded.get(message_id)
        if message is None:
            count("gone")
        elif message_id not in claimed:
            count("already processed" if message.status is InboundStatus.PROCESSED else "being processed by another job")
        else:
            todo.append(message)
    global _current
    try:
        part: list[InboundMessage] = []
        size = 0
        for message in todo:
            part.append(message)
            size += message.size or 0
            if size >= READ_AHEAD_BYTES or len(part) >= READ_AHEAD_MESSAGES or message is todo[-1]:
                _current = Lookups()
                for outcome in _process_part(part):
                    count(outcome)
                part, size = [], 0
    finally:
        _current = None
    session.commit()
    return outcomes


READ_AHEAD_BYTES = 16 * 1024 * 1024  # raw bytes of a batch read (and their parsed forms held) at once
READ_AHEAD_MESSAGES = 200


def _process_part(part: list[InboundMessage]) -> list[str]:
    """Read every message of `part`, look up what they name at once, then process each in its own
    savepoint. Returns each message's outcome."""
    raws = dict(session.execute(select(InboundMessage.id, InboundMessage.raw)
                                .where(InboundMessage.id.in_([m.id for m in part]))).all())
    read: list[tuple[InboundMessage, ParsedMessage | None, Classification | None, BaseException | None]] = []
    for message in part:
        try:
            parsed, result = _read(raws.pop(message.id))
            read.append((message, parsed, result, None))
        except Exception as e:  # noqa: BLE001 - recorded on the message below, as a failure in processing
            read.append((message, None, None, e))
    del raws
    # The part's claim renewed (it may have taken a while to read). Being a write, it also opens
    # the transaction on SQLite, whose driver starts none before a SAVEPOINT: each RELEASE would
    # then commit its message on its own, and a job killed mid-way would leave half a batch.
    lease = timedelta(seconds=2 * current_app.config["BATCH_LOCK_TTL"])
    session.execute(update(InboundMessage).where(InboundMessage.id.in_([m.id for m in part]))
                    .values(claimed_until=utcnow() + lease).execution_options(synchronize_session=False))
    _prefetch([(m, p, r) for m, p, r, e in read if p is not None])
    outcomes = []
    for message, parsed, result, error in read:
        state = _current.snapshot()
        try:
            with session.begin_nested():
                if error is not None:
                    raise error
                # Set first, so that they go in the same UPDATE as what _process derives (a
                # failure rolls the savepoint back, these with it).
                reprocessing = message.processed_at is not None
                message.status, message.error, message.processed_at = InboundStatus.PROCESSED, None, utcnow()
                message.claimed_until = None
                _apply(message, parsed, result, reprocessing)
            if message.thread is not None:
                _current.note_threaded(message.message_id, message.id, message.thread,
                                        [message.in_reply_to or "", *message.references])
            else:
                _current.note_references([message.in_reply_to or "", *message.references])
            outcomes.append(message.kind.value)
        except OperationalError:  # the database away: the whole job is retried (the claims lapse meanwhile)
            session.rollback()
            raise
        except Exception:  # noqa: BLE001 - this message alone is kept and flagged, to be retried from the browser
            _current.restore(state)
            message.status, message.error = InboundStatus.FAILED, traceback.format_exc(limit=8)[-4000:]
            message.claimed_until = None
            current_app.logger.exception("processing inbound message %s failed", message.id)
            outcomes.append("failed")
    return outcomes


def _prefetch(read: list[tuple[InboundMessage, ParsedMessage, Classification]]) -> None:
    """Ask once, for all of a part's messages, what processing each would ask (see lookups)."""
    message_ids, addresses, delivery_ids, guesses, own = set(), set(), set(), set(), set()
    for message, parsed, result in read:
        message_ids.update(mid for mid, _ in _referenced(parsed))
        addresses.add(parsed.from_address or "")
        delivery_ids.update(i for _, i in _token_ids(parsed))
        own.add(message.message_id or "")
        if result.bounce is not None:
            message_ids.add(result.bounce.original_message_id or "")
            addresses.update(r.address or "" for r in result.bounce.recipients)
        if result.complaint is not None:
            message_ids.add(result.complaint.original_message_id or "")
            addresses.update(result.complaint.recipients)
        if parsed.from_address and _SUBJECT_PREFIX.match(parsed.subject or ""):
            guesses.add((_base(parsed.from_address), normalise_subject(parsed.subject)))
    since = utcnow() - timedelta(days=current_app.config["THREAD_GUESS_DAYS"])
    _current.prefetch(message_ids=message_ids, addresses=addresses, delivery_ids=delivery_ids, guesses=guesses,
                      since=since, own_ids=own)


def _read(raw: bytes) -> tuple[ParsedMessage, Classification]:
    """Parse and classify: what a message is, before anything is looked up or written."""
    parsed = storable_fields(parse(raw, max_bytes=current_app.config["INBOUND_MAX_BYTES"]))
    return parsed, classify(parsed, *own_identity(current_app.config))


def _process(message: InboundMessage, reprocessing: bool = True) -> None:
    """`reprocessing`: the message was processed before, so what that derived is replaced. (A
    message never processed has nothing derived: a failed run rolls back whole.)"""
    parsed, result = _read(message.raw)
    _apply(message, parsed, result, reprocessing)


def _apply(message: InboundMessage, parsed: ParsedMessage, result: Classification, reprocessing: bool) -> None:
    """Act on what a message was read as: store what was derived, match, thread, bounce..."""
    _fill(message, parsed, result, reprocessing)
    tokens = _tokens(parsed)
    if result.kind == "bounce":
        _bounce(message, result, tokens)
    elif result.kind == "complaint":
        _complaint(message, result, tokens)
    elif result.kind == "auto_reply":
        _link(message, parsed, tokens)
    elif result.kind == "loop":
        message.flagged, message.match_note = True, "our own message came back: not threaded"
    elif "u" in tokens and result.kind == "reply":
        _unsubscribe_by_mail(message, tokens["u"])
    else:  # reply, other: correspondence
        _thread(message, parsed, tokens)
        if result.kind == "reply" and message.campaign_id is not None and message.member_id is not None:
            from mailer.meetings.service import from_inbound

            session.flush()
            from_inbound(message)  # apologies to a meeting's notice, or a calendar answer


def _text(value: str | None) -> str:
    """Text from the message as a database column takes it (broken mail has NULs and stray bytes)."""
    return storable(value)


def storable_fields(parsed: ParsedMessage) -> ParsedMessage:
    """Every header field of a parsed message as the database takes it, whichever header it came
    from (From, In-Reply-To, References... are stored and also compared in queries, which
    PostgreSQL refuses with a NUL in them): one rule for all, before anything reads them."""
    for f in dataclasses.fields(parsed):
        value = getattr(parsed, f.name)
        if isinstance(value, str):
            setattr(parsed, f.name, storable(value))
        elif isinstance(value, list) and value and isinstance(value[0], str):
            setattr(parsed, f.name, [storable(v) for v in value])
        elif f.name == "headers":
            parsed.headers = [(storable(k), storable(v)) for k, v in value]
    return parsed


def _fill(message: InboundMessage, parsed: ParsedMessage, result: Classification, reprocessing: bool = True) -> None:
    message.kind = InboundKind(result.kind)
    message.reasons, message.defects = list(result.reasons), list(parsed.defects)
    if parsed.oversized:
        message.defects = [*message.defects, "over the size limit: only the headers were read"]
    # Every header field is cleaned the same way: any byte in any of them is stored.
    message.from_address, message.from_name = (parsed.from_address or None) and parsed.from_address[:254], parsed.from_name[:200]
    message.to_addresses, message.cc_addresses = parsed.to, parsed.cc
    message.subject, message.sent_at = parsed.subject[:500], parsed.date
    message.in_reply_to, message.references = (parsed.in_reply_to or None) and parsed.in_reply_to[:300], parsed.references
    message.full_text = _text(parsed.text)
    message.html_safe = _text(sanitize_inbound_html(parsed.html)) if parsed.html and not parsed.html_limited else None
    try:
        trimmed = trim_message(parsed)
        message.visible_text, message.quoted_text = _text(trimmed.visible), _text(trimmed.quoted)
        limited = trimmed.limited
    except Exception:  # noqa: BLE001 - a trimming bug must not hide the message: show it whole
        message.visible_text, message.quoted_text, limited = _text(parsed.text), "", True
    # Read only in part (MIME too deep or broken, HTML or text over the bounds): an officer looks.
    if parsed.incomplete or parsed.html_limited or limited or result.limited:
        message.flagged = True
    message.report = None
    if result.bounce is not None:
        message.report = {"bounce": {"source": result.bounce.source, "original_message_id": result.bounce.original_message_id,
                                     "recipients": [{"address": r.address, "status": r.status, "action": r.action,
                                                     "diagnostic": r.diagnostic[:500], "hard": r.hard,
                                                     "reply_code": r.reply_code} for r in result.bounce.recipients]}}
    if result.complaint is not None:
        c = result.complaint
        message.report = {"complaint": {"feedback_type": c.feedback_type, "recipients": c.recipients,
                                        "original_message_id": c.original_message_id}}
    if reprocessing:
        session.execute(delete(MessageReference).where(MessageReference.inbound_message_id == message.id))
        session.execute(delete(InboundAttachment).where(InboundAttachment.message_id == message.id))
    for referenced in {m for m in [parsed.in_reply_to, *parsed.references] if m}:
        session.add(MessageReference(inbound_message_id=message.id, referenced=referenced[:300]))
    for a in parsed.attachments:
        session.add(InboundAttachment(message_id=message.id, filename=_text(a.filename)[:255],
                                      content_type=_text(a.content_type)[:150],
                                      size=a.size, data=a.data, dangerous=a.dangerous))


# --- tokens and matching ----------------------------------------------------------------------

def _token_ids(parsed: ParsedMessage) -> list[tuple[str, int]]:
    """(kind, delivery id) of each valid token in the recipient headers, in order."""
    found = []
    for address in [*parsed.to, *parsed.cc, *parsed.delivered_to, *parsed.x_original_to]:
        local = (address or "").rpartition("@")[0]
        if "+" not in local:
            continue
        read = read_address_token(local.split("+", 1)[1])
        if read is not None:
            found.append(read)
    return found


def _tokens(parsed: ParsedMessage) -> dict[str, Delivery]:
    """Valid tokens found in the recipient headers: {"r"|"b"|"u": delivery}."""
    found: dict[str, Delivery] = {}
    for kind, delivery_id in _token_ids(parsed):
        delivery = session.get(Delivery, delivery_id)  # a batch loaded them into the session already
        if delivery is not None:
            found.setdefault(kind, delivery)
    return found


def _base(address: str | None) -> str:
    local, _, domain = (address or "").lower().rpartition("@")
    return f"{local.split('+')[0]}@{domain}"


def _referenced(parsed: ParsedMessage) -> list[tuple[str, str]]:
    """(Message-ID, how) to try, in order: In-Reply-To, then References from last to first."""
    ids = [(parsed.in_reply_to, "in-reply-to")] if parsed.in_reply_to else []
    ids += [(mid, "references") for mid in reversed(parsed.references) if mid != parsed.in_reply_to]
    return ids


def _from_delivery(message: InboundMessage, delivery: Delivery, how: str, parsed: ParsedMessage) -> None:
    message.delivery_id, message.campaign_id, message.member_id = delivery.id, delivery.campaign_id, delivery.member_id
    message.match_method = how
    if parsed.from_address and _base(parsed.from_address) != _base(delivery.email):
        message.flagged = True
        message.match_note = (f"sent by {parsed.from_address}, not {delivery.email} to whom the message went "
                              "(a forward, or another address of theirs)")[:500]


def _link(message: InboundMessage, parsed: ParsedMessage, tokens: dict[str, Delivery]) -> Thread | None:
    """Match without threading (auto-replies): to the delivery or message it answers."""
    if "r" in tokens:
        _from_delivery(message, tokens["r"], "token", parsed)
        return None
    for mid, how in _referenced(parsed):
        delivery = _ask().delivery(mid)
        if delivery is not None:
            _from_delivery(message, delivery, how, parsed)
            return None
    message.member_id = _member_by_address(parsed.from_address)
    return None


_current: Lookups | None = None  # the look-ups of the batch (or message) being processed


def _ask() -> Lookups:
    """The look-ups of what was there before this message: asked in advance for a batch, else one
    query each (see mailer.inbound.lookups)."""
    return _current if _current is not None else Lookups()


def _member_by_address(address: str | None) -> int | None:
    return _ask().member(address)


# --- threading --------------------------------------------------------------------------------

def _thread(message: InboundMessage, parsed: ParsedMessage, tokens: dict[str, Delivery]) -> None:
    thread, parent = None, None
    if "r" in tokens:
        _from_delivery(message, tokens["r"], "token", parsed)
        thread = _campaign_thread(tokens["r"], message)
    if thread is None:
        ask = _ask()
        for mid, how in _referenced(parsed):
            delivery = ask.delivery(mid)
            if delivery is not None:
                _from_delivery(message, delivery, how, parsed)
                thread = _campaign_thread(delivery, message)
                break
            earlier = ask.earlier_message(mid, other_than=message.id)
            if earlier is not None:
                parent, thread_id = earlier
                thread, message.match_method = session.get(Thread, thread_id), how
                break
            answer = ask.answer(mid)
            if answer is not None:
                thread, message.match_method = session.get(Thread, answer.thread_id), how
                parent = answer.in_reply_to_id
                break
    if thread is None:
        thread = _guess(message, parsed)
    created = thread is None
    if thread is None:
        thread = _new_thread(message, parsed)
        message.match_method = message.match_method or "none"
        message.member_id = message.member_id or thread.member_id  # _new_thread looked the sender up
    elif message.member_id is None:
        message.member_id = thread.member_id or _member_by_address(parsed.from_address)
    if thread.member_id is None and message.member_id is not None:
        thread.member_id = message.member_id
        thread.branch_id = _ask().branch(message.member_id)
    # By the relationship: a new thread and the message's one UPDATE go in the savepoint's flush.
    message.thread, message.parent_id = thread, parent
    if not created:  # a new thread was made with both (no second UPDATE of it)
        thread.last_activity_at, thread.status = utcnow(), ThreadStatus.NEEDS_ACTION
    if message.message_id and _ask().may_have_orphans(message.message_id):
        session.flush()
        _adopt_orphans(message)


def _campaign_thread(delivery: Delivery, message: InboundMessage) -> Thread:
    """A member's replies to one campaign share a thread."""
    thread = session.scalar(select(Thread).where(Thread.campaign_id == delivery.campaign_id,
                                                 Thread.member_id == delivery.member_id).order_by(Thread.id).limit(1))
    if thread is None:
        campaign = session.get(Campaign, delivery.campaign_id)
        member = session.get(Member, delivery.member_id) if delivery.member_id else None
        thread = Thread(subject=message.subject or (campaign.subject if campaign else ""),
                        normalised_subject=normalise_subject(message.subject), correspondent=_base(delivery.email),
                        member_id=delivery.member_id, branch_id=member.branch_id if member else None,
                        campaign_id=delivery.campaign_id)
        session.add(thread)
        session.flush()
    return thread


def _guess(message: InboundMessage, parsed: ParsedMessage) -> Thread | None:
    subject = normalise_subject(parsed.subject)
    # Only a "Re:"/"Fwd:" subject from a known sender may be guessed onto an earlier thread.
    if not parsed.from_address or not subject or not _SUBJECT_PREFIX.match(parsed.subject or ""):
        return None
    since = utcnow() - timedelta(days=current_app.config["THREAD_GUESS_DAYS"])
    thread = _ask().latest_thread(_base(parsed.from_address), subject, since)
    if thread is not None:
        message.match_method = "guess"
        message.match_note = "joined on sender and subject only: check it belongs here"
    return thread


def _new_thread(message: InboundMessage, parsed: ParsedMessage) -> Thread:
    """Not flushed here: it is inserted with the message's UPDATE when the savepoint ends."""
    member_id = message.member_id or _member_by_address(parsed.from_address)
    thread = Thread(subject=(parsed.subject or "(no subject)")[:300], normalised_subject=normalise_subject(parsed.subject),
                    correspondent=_base(parsed.from_address) if parsed.from_address else "", member_id=member_id,
                    branch_id=_ask().branch(member_id) if member_id else None,
                    last_activity_at=utcnow(), status=ThreadStatus.NEEDS_ACTION)
    session.add(thread)
    return thread


def _adopt_orphans(parent: InboundMessage) -> None:
    """Replies that arrived before `parent` started threads of their own: move them under it."""
    if not parent.message_id:
        return
    orphans = session.scalars(select(InboundMessage).join(
        MessageReference, MessageReference.inbound_message_id == InboundMessage.id).where(
        MessageReference.referenced == parent.message_id, InboundMessage.id != parent.id,
        InboundMessage.match_method == "none")).all()
    for orphan in orphans:
        old_thread_id = orphan.thread_id
        for moved in session.scalars(select(InboundMessage).where(InboundMessage.thread_id == old_thread_id)):
            moved.thread_id = parent.thread_id
        orphan.parent_id, orphan.match_method = parent.id, "in-reply-to" if orphan.in_reply_to == parent.message_id \
            else "references"
        orphan.match_note = "arrived before the message it answers; moved under it when that arrived"
        session.flush()
        if old_thread_id and old_thread_id != parent.thread_id:
            session.execute(delete(Thread).where(Thread.id == old_thread_id))
            _ask().note_merged(old_thread_id, parent.thread_id)


# --- bounces, complaints, unsubscribes by mail ----------------------------------------------------

def _our_delivery(message_id: str | None) -> Delivery | None:
    """The delivery whose Message-ID a report returned, if it is one of ours."""
    if not message_id:
        return None
    return _ask().delivery(message_id)


def _delivery_for(address: str, ours: Delivery | None, token: Delivery | None) -> Delivery | None:
    """The delivery to `address` this report is tied to by something we sent, or None."""
    for delivery in (token, ours):
        if delivery is not None and (not address or _base(delivery.email) == _base(address)):
            return delivery
    return None


def _tie(message: InboundMessage, delivery: Delivery, how: str) -> None:
    if message.delivery_id is None:
        message.delivery_id, message.campaign_id, message.member_id = (delivery.id, delivery.campaign_id,
                                                                       delivery.member_id)
        message.match_method = how


def _unconfirmed(message: InboundMessage, addresses: list[str]) -> None:
    """A report naming addresses with nothing of ours in it: recorded and flagged, acted on by no one."""
    message.flagged, message.match_method = True, UNCONFIRMED
    message.match_note = (f"names {', '.join(sorted(set(addresses)))} but carries nothing we sent (no bounce token, "
                          "no Message-ID of ours): a CLP officer must confirm it before anyone is held or "
                          "unsubscribed")[:500]
    if message.member_id is None:
        message.member_id = _member_by_address(addresses[0])


UNCONFIRMED = "address"  # match_method of a report that names an address only
CONFIRMED = "confirmed"


def _bounce(message: InboundMessage, result: Classification, tokens: dict[str, Delivery]) -> None:
    report = result.bounce
    token = tokens.get("b") or tokens.get("r")
    ours = _our_delivery(report.original_message_id)
    unconfirmed = []
    for r in report.recipients:
        if not r.failed or r.action == "delayed":
            continue  # a delay warning or a success report: nothing is wrong with the address yet
        address = (r.address or (token.email if token else "") or (ours.email if ours else "")).lower()
        if not address:
            continue
        delivery = _delivery_for(address, ours, token)
        if delivery is None:
            unconfirmed.append(address)
            continue
        _tie(message, delivery, "token" if delivery is token else "report")
        record_bounce(message, address, r.hard, r.status, r.diagnostic, delivery)
    if unconfirmed:
        _unconfirmed(message, unconfirmed)


def record_bounce(message: InboundMessage, address: str, hard: bool, status: str, diagnostic: str,
                  delivery: Delivery | None) -> None:
    """One failed recipient, recorded and judged (only for a bounce tied to us, or confirmed)."""
    session.add(BounceEvent(email=address, hard=hard, status=status, diagnostic=diagnostic[:1000],
                            delivery_id=delivery.id if delivery else None, inbound_message_id=message.id,
                            member_id=delivery.member_id if delivery else _member_by_address(address)))
    session.flush()
    apply_health(address, hard, f"{status} {diagnostic}".strip()[:500])


def apply_health(address: str, hard: bool, why: str) -> EmailHealth:
    """Judge an address after a bounce: hard holds it at once (and suppresses it); soft ones hold
    it after SOFT_BOUNCE_LIMIT within SOFT_BOUNCE_DAYS. Members with the address are updated."""
    cfg = current_app.config
    since = utcnow() - timedelta(days=cfg["SOFT_BOUNCE_DAYS"])
    soft = session.scalar(select(func.count()).where(BounceEvent.email == address, BounceEvent.hard.is_(False),
                                                     BounceEvent.at >= since))
    health = EmailHealth.ON_HOLD if hard or soft >= cfg["SOFT_BOUNCE_LIMIT"] else EmailHealth.SOFT_BOUNCING
    if hard and session.scalar(select(Suppression.id).where(Suppression.email == address,
                                                            Suppression.reason == SuppressionReason.HARD_BOUNCE)) is None:
        session.add(Suppression(email=address, stream="all", reason=SuppressionReason.HARD_BOUNCE, note=why))
    for member in session.scalars(select(Member).where(func.lower(Member.email) == address)):
        if member.email_health is EmailHealth.ON_HOLD or member.email_health is health:
            continue
        audit.record("member.email_health", "member", member.id,
                     {"email_health": [member.email_health.value, health.value]}, note=why, actor="bounce")
        member.email_health = health
    return health


def _complaint(message: InboundMessage, result: Classification, tokens: dict[str, Delivery]) -> None:
    report = result.complaint
    token = tokens.get("b") or tokens.get("r")
    delivery = _our_delivery(report.original_message_id) or token
    named = {a.lower() for a in report.recipients if a}
    if delivery is not None:
        _tie(message, delivery, "report" if delivery is not token else "token")
        suppress_complaint(delivery.email.lower(), report.feedback_type, delivery.campaign_id)
    # Addresses the report names besides the one we sent it to are a claim only.
    others = sorted(a for a in named if delivery is None or _base(a) != _base(delivery.email))
    if others:
        _unconfirmed(message, others)


def suppress_complaint(address: str, feedback_type: str | None, campaign_id: int | None) -> None:
    """A complaint about our mail to `address`: no more bulletins to it."""
    if session.scalar(select(Suppression.id).where(Suppression.email == address,
                                                   Suppression.reason == SuppressionReason.COMPLAINT)) is None:
        session.add(Suppression(email=address, stream="bulletins", reason=SuppressionReason.COMPLAINT,
                                note=f"feedback report ({feedback_type or 'abuse'})"))
    for member in session.scalars(select(Member).where(func.lower(Member.email) == address)):
        consent.unsubscribe(member, Stream.BULLETINS, "complaint", campaign_id)


def confirm_report(officer, message: InboundMessage) -> list[str]:
    """A CLP officer confirms a bounce or complaint that only named addresses: it acts now, as if
    it had been tied to our mail. Returns the addresses acted on. Audited; not committed."""
    if not scope.sees_all(officer):
        raise PermissionError("Only a CLP officer can confirm a report that names addresses only.")
    if message.match_method != UNCONFIRMED or message.kind not in (InboundKind.BOUNCE, InboundKind.COMPLAINT):
        raise Refusal("This message has nothing to confirm.")
    report = message.report or {}
    acted = []
    if "bounce" in report:
        for r in report["bounce"]["recipients"]:
            address = (r.get("address") or "").lower()
            if address and r.get("action") in FAILED_ACTIONS and r.get("action") != "delayed" \
                    and (message.delivery_id is None or _base(address) != _base(message.delivery.email)):
                record_bounce(message, address, bool(r.get("hard")), r.get("status") or "", r.get("diagnostic") or "",
                              None)
                acted.append(address)
    if "complaint" in report:
        tied = message.delivery.email if message.delivery_id else None
        for address in sorted({a.lower() for a in report["complaint"]["recipients"] if a}):
            if tied is None or _base(address) != _base(tied):
                suppress_complaint(address, report["complaint"].get("feedback_type"), None)
                acted.append(address)
    message.match_method, message.flagged = CONFIRMED, False
    message.match_note = f"confirmed by {officer.email}: acted on {', '.join(acted) or 'no one'}"[:500]
    audit.record("inbound.confirm_report", "inbound_message", message.id, {"addresses": [None, acted]},
                 officer=officer)
    return acted


def _unsubscribe_by_mail(message: InboundMessage, delivery: Delivery) -> None:
    """The List-Unsubscribe mailto: the member wrote to secretary+u-TOKEN@."""
    message.delivery_id, message.campaign_id, message.member_id = delivery.id, delivery.campaign_id, delivery.member_id
    message.match_method, message.match_note = "token", "unsubscribe by email"
    member = session.get(Member, delivery.member_id) if delivery.member_id else None
    campaign = session.get(Campaign, delivery.campaign_id)
    if member is not None and campaign is not None:
        consent.unsubscribe(member, campaign.stream, "email (List-Unsubscribe mailto)", campaign.id)
