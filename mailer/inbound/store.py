"""Taking mail in: every transport hands raw bytes here. The message is stored whole first
(deduplicated by Message-ID, or by a hash when it has none), then processed by an RQ job.
Nothing accepted is ever dropped: a message that cannot be processed is kept, flagged, and can
be processed again."""

from __future__ import annotations

import hashlib
from email.parser import BytesHeaderParser
from email.policy import compat32

from flask import current_app
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from mailer import work
from mailer.db import session, storable, utcnow
from mailer.models import InboundMessage, InboundStatus


def _message_id(raw: bytes) -> str | None:
    """The Message-ID from the headers alone (no body parsing), normalised to <...>."""
    try:
        value = BytesHeaderParser(policy=compat32).parsebytes(raw[:256 * 1024]).get("Message-ID")
    except Exception:  # noqa: BLE001 - a header we cannot read means no Message-ID, not a lost message
        return None
    value = " ".join(str(value or "").split())
    if not value:
        return None
    value = storable(value.strip())  # a NUL or an undecodable byte in it is still a Message-ID, stored
    if not value.startswith("<"):
        value = f"<{value.strip('<>')}>"
    return value[:300]


def dedupe_key(raw: bytes) -> tuple[str, str | None, str]:
    """(key, Message-ID, sha256) for a raw message. The hash is of its lines whatever ends them
    (SMTP carries CRLF; a file or webhook often LF), so one message that came twice is one."""
    digest = hashlib.sha256(raw.replace(b"\r\n", b"\n")).hexdigest()
    message_id = _message_id(raw)
    return (f"mid:{message_id}" if message_id else f"sha256:{digest}")[:320], message_id, digest


def store(raw: bytes, transport: str, imap: tuple[str, int, int] | None = None,
          as_received: bytes | None = None) -> tuple[InboundMessage, bool]:
    """Keep a raw message and queue its processing once the caller commits. Returns (message, new):
    a message already held is returned as it is and not queued again. `as_received` is the message before
    a transport added anything (the SMTP receiver's trace headers): the dedupe key is taken from
    it, so one message that came by two transports is one message, Message-ID or not."""
    key, message_id, digest = dedupe_key(as_received if as_received is not None else raw)
    existing = session.scalar(select(InboundMessage).where(InboundMessage.dedupe_key == key))
    if existing is not None:
        return existing, False
    message = InboundMessage(transport=transport, dedupe_key=key, message_id=message_id, sha256=digest, raw=raw,
                             size=len(raw), oversized=len(raw) > current_app.config["INBOUND_MAX_BYTES"])
    if imap is not None:
        message.imap_mailbox, message.imap_uidvalidity, message.imap_uid = imap
    try:
        with session.begin_nested():  # a savepoint: a copy stored meanwhile undoes this one alone
            session.add(message)
    except IntegrityError:  # stored meanwhile by another transport or worker: that copy stands
        existing = session.scalar(select(InboundMessage).where(InboundMessage.dedupe_key == key))
        if existing is None:
            raise
        return existing, False
    enqueue_processing(message.id)
    return message, True


BATCH = 50  # messages per processing job when many arrive at once


def store_many(raws: list[bytes], transport: str) -> list[tuple[InboundMessage, bool]]:
    """Keep many raw messages in one transaction and queue their processing BATCH to a job (an
    import, a poll, a benchmark): the per-message commit and job were most of the ingest time.
    Same guarantees as store(): queued after the caller's commit, deduplicated; if the batch cannot
    be stored whole (a concurrent transport stored one meanwhile), each is stored on its own."""
    keyed = [(dedupe_key(raw), raw) for raw in raws]
    keys = {key for (key, _, _), _ in keyed}
    held = {m.dedupe_key: m for m in session.scalars(select(InboundMessage).where(InboundMessage.dedupe_key.in_(keys)))}
    limit = current_app.config["INBOUND_MAX_BYTES"]
    out: list[tuple[InboundMessage, bool]] = []
    new: list[InboundMessage] = []
    for (key, message_id, digest), raw in keyed:
        if key in held:
            out.append((held[key], False))
            continue
        message = InboundMessage(transport=transport, dedupe_key=key, message_id=message_id, sha256=digest, raw=raw,
                                 size=len(raw), oversized=len(raw) > limit)
        held[key] = message
        new.append(message)
        out.append((message, True))
    try:
        with session.begin_nested():
            session.add_all(new)
    except IntegrityError:
        return [store(raw, transport) for raw in raws]
    ids = [m.id for m in new]
    for start in range(0, len(ids), BATCH):
        _enqueue_batch(ids[start:start + BATCH])
    return out


def _enqueue_batch(message_ids: list[int]) -> None:
    """Queue their processing after the commit (Redis away: the messages are safe in the database,
    and reconcile queues them)."""
    work.after_commit("process_inbound_batch", message_ids)


def enqueue_processing(message_id: int) -> None:
    """Queue the processing job after the commit, so the worker finds the row."""
    work.after_commit("process_inbound", message_id, attempts(message_id))


def attempts(message_id: int) -> int:
    """How many times the message's processing was tried (a new try is a new job)."""
    return session.scalar(select(InboundMessage.attempts).where(InboundMessage.id == message_id)) or 0


def unprocessed() -> list[int]:
    """Ids of messages stored but not yet processed and not held by a live job (for reconcile:
    Redis lost the job, no queue was reachable when it was stored, or its job was killed)."""
    return list(session.scalars(select(InboundMessage.id).where(
        InboundMessage.status == InboundStatus.RECEIVED,
        or_(InboundMessage.claimed_until.is_(None), InboundMessage.claimed_until < utcnow()))))
