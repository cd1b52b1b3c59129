"""Processing one stored message: parse, classify, match, then act on what it is.

- reply (and other human mail): threaded (mailer.inbound.threads).
- bounce and complaint: tied to what we sent, or flagged for an officer (mailer.inbound.reports).
- auto-reply and loop: recorded and linked, never threaded, never answered.
What processing looks up (deliveries, members, earlier messages and threads) is asked once per
batch (mailer.inbound.lookups). Idempotent: processing the same message again replaces what the
last run derived.
"""

from __future__ import annotations

import dataclasses
import traceback
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import defer

from mailer.db import session, storable, utcnow
from mailer.inbound import lookups, reports
from mailer.inbound.classify import Classification, classify, own_identity
from mailer.inbound.parse import ParsedMessage, parse
from mailer.inbound.reports import confirm_report  # noqa: F401 - the pages confirm a report as process.confirm_report
from mailer.inbound.sanitize import sanitize_inbound_html
from mailer.inbound.threads import (SUBJECT_PREFIX, base_address, from_delivery, normalise_subject, referenced,
                                    thread_message)
from mailer.inbound.trim_html import trim_message
from mailer.models import (Delivery, InboundAttachment, InboundKind, InboundMessage, InboundStatus, MessageReference,
                           Thread)
from mailer.compose.tokens import read_address_token


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
        with lookups.active(lookups.Lookups()):
            _process(message, reprocessing=message.processed_at is not None)
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
    part: list[InboundMessage] = []
    size = 0
    for message in todo:
        part.append(message)
        size += message.size or 0
        if size >= READ_AHEAD_BYTES or len(part) >= READ_AHEAD_MESSAGES or message is todo[-1]:
            with lookups.active(lookups.Lookups()):
                for outcome in _process_part(part):
                    count(outcome)
            part, size = [], 0
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
        state = lookups.current().snapshot()
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
                lookups.current().note_threaded(message.message_id, message.id, message.thread,
                                        [message.in_reply_to or "", *message.references])
            else:
                lookups.current().note_references([message.in_reply_to or "", *message.references])
            outcomes.append(message.kind.value)
        except OperationalError:  # the database away: the whole job is retried (the claims lapse meanwhile)
            session.rollback()
            raise
        except Exception:  # noqa: BLE001 - this message alone is kept and flagged, to be retried from the browser
            lookups.current().restore(state)
            message.status, message.error = InboundStatus.FAILED, traceback.format_exc(limit=8)[-4000:]
            message.claimed_until = None
            current_app.logger.exception("processing inbound message %s failed", message.id)
            outcomes.append("failed")
    return outcomes


def _prefetch(read: list[tuple[InboundMessage, ParsedMessage, Classification]]) -> None:
    """Ask once, for all of a part's messages, what processing each would ask (see lookups)."""
    message_ids, addresses, delivery_ids, guesses, own = set(), set(), set(), set(), set()
    for message, parsed, result in read:
        message_ids.update(mid for mid, _ in referenced(parsed))
        addresses.add(parsed.from_address or "")
        delivery_ids.update(i for _, i in _token_ids(parsed))
        own.add(message.message_id or "")
        if result.bounce is not None:
            message_ids.add(result.bounce.original_message_id or "")
            addresses.update(r.address or "" for r in result.bounce.recipients)
        if result.complaint is not None:
            message_ids.add(result.complaint.original_message_id or "")
            addresses.update(result.complaint.recipients)
        if parsed.from_address and SUBJECT_PREFIX.match(parsed.subject or ""):
            guesses.add((base_address(parsed.from_address), normalise_subject(parsed.subject)))
    since = utcnow() - timedelta(days=current_app.config["THREAD_GUESS_DAYS"])
    lookups.current().prefetch(message_ids=message_ids, addresses=addresses, delivery_ids=delivery_ids, guesses=guesses,
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
        reports.bounce(message, result, tokens)
    elif result.kind == "complaint":
        reports.complaint(message, result, tokens)
    elif result.kind == "auto_reply":
        _link(message, parsed, tokens)
    elif result.kind == "loop":
        message.flagged, message.match_note = True, "our own message came back: not threaded"
    elif "u" in tokens and result.kind == "reply":
        reports.unsubscribe_by_mail(message, tokens["u"])
    else:  # reply, other: correspondence
        thread_message(message, parsed, tokens)
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


def _link(message: InboundMessage, parsed: ParsedMessage, tokens: dict[str, Delivery]) -> Thread | None:
    """Match without threading (auto-replies): to the delivery or message it answers."""
    if "r" in tokens:
        from_delivery(message, tokens["r"], "token", parsed)
        return None
    for mid, how in referenced(parsed):
        delivery = lookups.current().delivery(mid)
        if delivery is not None:
            from_delivery(message, delivery, how, parsed)
            return None
    message.member_id = lookups.current().member(parsed.from_address)
    return None
