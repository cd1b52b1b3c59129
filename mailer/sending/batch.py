"""The batch job: one SMTP connection, one personal message per member, outcomes recorded in bulk.

A batch claims its Delivery rows a chunk at a time (status SENDING), re-checks consent and
suppression for the chunk just before sending it, and sends each message on its own. Every
accepted message is noted at once in a Redis journal; the chunk's outcomes are then written to
the database together. A worker killed mid-chunk leaves rows in SENDING: the next run of the
batch marks those the journal saw as sent and sends only the rest, so nothing delivered is sent
again (unless Redis itself was flushed in between, when the journal is gone and they are resent).
"""

from __future__ import annotations

import gc
import logging
import re
import smtplib
import socket
import time
from contextlib import closing
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from redis import exceptions as redis_errors
from sqlalchemy import and_, bindparam, exists, or_, select, text, update
from sqlalchemy.orm import joinedload

from mailer import audit, queue
from mailer.db import session, utcnow
from mailer.mail import mail
from mailer.members import segments
from mailer.models import Branch, Campaign, CampaignStatus, Delivery, DeliveryStatus, EmailHealth, Member, Stream
from mailer.sending import campaigns
from mailer.sending.message import CampaignMessages, Envelope
from mailer.sending.ratelimit import Limits, RelayLimiter

HARD_CODES = {550, 551, 553}  # mailbox unknown or not allowed: hold the address


def journal_key(campaign_id: int) -> str:
    return f"mailer:journal:{campaign_id}"


@dataclass
class Outcome:
    delivery_id: int
    member_id: int | None
    status: DeliveryStatus
    message_id: str | None = None
    error: str | None = None
    code: int | None = None
    attempts: int = 0


def backoff(attempts: int) -> timedelta:
    """How long a temporary failure waits: doubling with each attempt."""
    return timedelta(seconds=current_app.config["RETRY_BASE_SECONDS"] * 2 ** max(0, attempts - 1))


class SmtpSession:
    """One relay connection through Flask-Mail's settings, reopened once if the relay drops it,
    holding one of the relay's connection slots while open."""

    def __init__(self, limiter: RelayLimiter):
        self.limiter, self.conn = limiter, None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def open(self):
        if self.conn is None:
            if not self.limiter.acquire_connection():
                raise smtplib.SMTPServerDisconnected("no relay connection slot became free")
            try:
                self.conn = mail.connect().__enter__()
            except BaseException:
                self.limiter.release_connection()
                raise
        return self.conn

    def close(self):
        if self.conn is not None:
            try:
                self.conn.__exit__(None, None, None)
            except (smtplib.SMTPException, OSError):
                pass
            self.conn = None
            self.limiter.release_connection()

    def send(self, env: Envelope, before_content=None) -> None:
        """Hand one message to the relay; raises smtplib's errors for refusals, as its sendmail
        would. `before_content` is called once the relay has taken the envelope (MAIL, RCPT,
        DATA), just before the message's content goes out.

        The SMTP conversation is our own, on smtplib's connection: with PIPELINING (RFC 2920,
        offered by Postfix, Exchange and Gmail alike) MAIL, RCPT and DATA go in one write, so a
        message costs two round trips to the relay instead of four; and the message, whose lines
        all end in CRLF already, is dot-stuffed with one replace rather than smtplib's regex."""
        if self.conn is not None and self.conn.host.sock is None:
            self.close()  # the relay closed it (a 421): reopen rather than fail the next message
        host = self.open().host
        host.ehlo_or_helo_if_needed()
        options = f" size={len(env.data)}" if host.does_esmtp and host.has_extn("size") else ""
        if not (env.sender + env.recipient).isascii() and host.has_extn("smtputf8"):
            options += " SMTPUTF8"  # an internationalised address (RFC 6531); without it the relay decides
        commands = [f"MAIL FROM:{_smtp_address(env.sender)}{options}\r\n".encode(),
                    f"RCPT TO:{_smtp_address(env.recipient)}\r\n".encode(), b"DATA\r\n"]
        if host.does_esmtp and host.has_extn("pipelining"):
            host.send(b"".join(commands))
            replies = [host.getreply() for _ in commands]
        else:  # one command at a time, stopping at the first refusal
            replies = []
            for command in commands:
                host.send(command)
                replies.append(host.getreply())
                if replies[-1][0] not in (250, 251):
                    break
        _check_envelope(host, env, replies)
        if before_content is not None:
            try:
                before_content()
            except BaseException:
                self._abandon()  # mid-DATA: drop the connection, so nothing half-sent is delivered
                raise
        host.send(_dot_stuffed(env.data))
        code, reply = host.getreply()
        if code != 250:
            _reset_or_close(host, code)
            raise smtplib.SMTPDataError(code, reply)

    def _abandon(self):
        if self.conn is not None:
            self.conn.host.close()
            self.conn.host = None  # so Flask-Mail's exit does not QUIT into the message
            self.close()


def _smtp_address(address: str) -> str:
    """<address> for MAIL FROM and RCPT TO, as smtplib quotes it (its parsing only when needed)."""
    if _PLAIN_ADDRESS.fullmatch(address):
        return f"<{address}>"
    return smtplib.quoteaddr(address)


_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_ADDRESS = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")


def _dot_stuffed(data: bytes) -> bytes:
    """The message as DATA content: a dot doubled at the start of every line, then CRLF.CRLF.
    (The same bytes as smtplib's regex on a message whose lines end in CRLF.)"""
    data = data.replace(b"\n.", b"\n..")
    if data.startswith(b"."):
        data = b"." + data
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def _reset_or_close(host: smtplib.SMTP, code: int) -> None:
    """After a refusal: 421 means the relay is closing; anything else, start a fresh transaction."""
    if code == 421:
        host.close()
    else:
        try:
            host.rset()
        except smtplib.SMTPServerDisconnected:
            pass


def _check_envelope(host: smtplib.SMTP, env: Envelope, replies: list[tuple[int, bytes]]) -> None:
    """Raise smtplib's error for a refused MAIL, RCPT or DATA (after a refusal, a DATA the relay
    took anyway is ended at once with an empty body, which it cannot deliver: it has no recipient)."""
    (mail_code, mail_reply), rest = replies[0], replies[1:]
    rcpt_code, rcpt_reply = rest[0] if rest else (None, b"")
    data_code, data_reply = rest[1] if len(rest) > 1 else (None, b"")
    if mail_code == 250 and rcpt_code in (250, 251) and data_code == 354:
        return
    if data_code == 354:
        host.send(b".\r\n")
        host.getreply()
    if mail_code != 250:
        _reset_or_close(host, mail_code)
        raise smtplib.SMTPSenderRefused(mail_code, mail_reply, env.sender)
    if rcpt_code not in (250, 251):
        _reset_or_close(host, rcpt_code)
        raise smtplib.SMTPRecipientsRefused({env.recipient: (rcpt_code, rcpt_reply)})
    _reset_or_close(host, data_code)
    raise smtplib.SMTPDataError(data_code, data_reply)


class Journal:
    """Accepted messages noted in Redis, one at a time. A note is written the moment the relay
    accepts its message, and its reply is read just before the next message's content goes out
    (or before the chunk is recorded): the guarantee is unchanged, no message is sent while an
    earlier accepted one is unjournalled, but the Redis round trip overlaps the next envelope.
    Notes go down one connection held for the batch; should it fail, the note is written again
    through the client, with its retries (HSET of the same value twice is harmless)."""

    def __init__(self, redis, campaign_id: int):
        self.redis, self.key = redis, journal_key(campaign_id)
        self.conn = None
        self.pending: tuple[int, str] | None = None

    def note(self, delivery_id: int, message_id: str) -> None:
        self.confirm()
        self.pending = (delivery_id, message_id)
        try:
            if self.conn is None:
                self.conn = self.redis.connection_pool.get_connection()
            self.conn.send_packed_command([_resp(b"HSET", self.key.encode(), str(delivery_id).encode(),
                                                 message_id.encode())])
        except (redis_errors.ConnectionError, redis_errors.TimeoutError):
            self._again()

    def confirm(self) -> None:
        """Wait for the note in flight, if any (raises if Redis refused it, or cannot be reached)."""
        if self.pending is None:
            return
        try:
            self.conn.read_response()
        except (redis_errors.ConnectionError, redis_errors.TimeoutError):
            self._again()
        self.pending = None

    def _again(self) -> None:
        self.close()
        delivery_id, message_id = self.pending
        self.redis.hset(self.key, str(delivery_id), message_id)
        self.pending = None

    def close(self) -> None:
        if self.conn is not None:
            conn, self.conn = self.conn, None
            if self.pending is not None:
                conn.disconnect()  # a reply left unread must not reach the next user
            self.redis.connection_pool.release(conn)


def _resp(*parts: bytes) -> bytes:
    """A Redis command in the wire format (RESP)."""
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


def chunk_size(cfg) -> int:
    """SEND_CHUNK, or about ten seconds' worth of messages under a relay rate limit, so that the
    consent and suppression re-check before each chunk is never minutes old."""
    size = cfg["SEND_CHUNK"]
    for key, seconds in (("RATE_PER_MINUTE", 60), ("RATE_PER_HOUR", 3600), ("RATE_PER_DAY", 86400)):
        if cfg[key]:
            size = min(size, max(1, cfg[key] * 10 // seconds))
    return size


def limiter() -> RelayLimiter:
    cfg = current_app.config
    return RelayLimiter(queue.redis_connection(), cfg.get("MAIL_SERVER") or "default",
                        Limits(cfg["RATE_PER_MINUTE"], cfg["RATE_PER_HOUR"], cfg["RATE_PER_DAY"],
                               cfg["RATE_CONNECTIONS"]))


def send_batch(campaign_id: int, batch_no: int) -> dict:
    """Send what is left of one batch. Idempotent: only rows still to do are touched."""
    redis = queue.redis_connection()
    cfg = current_app.config
    lock = redis.lock(f"mailer:lock:{campaign_id}:{batch_no}", timeout=cfg["BATCH_LOCK_TTL"])
    if not lock.acquire(blocking_timeout=cfg["BATCH_LOCK_TTL"] + 5):
        return {"skipped": "another run of this batch is in progress"}
    try:
        return _send(campaign_id, batch_no, lock)
    finally:
        try:
            lock.release()
        except Exception:  # expired: harmless, the work is recorded in the database
            pass


def prepare_worker() -> None:
    """Run by a worker before it forks a work-horse per job: what each batch job would otherwise
    do afresh (build the HTML cleaner, compile its SQL statements, about a tenth of a second) is
    done once and inherited. Touches no data: the statements run for a campaign that cannot
    exist. Only an optimisation, so a failure is logged and ignored."""
    from mailer.compose.render import sanitize_html

    try:
        sanitize_html("<p>ready</p>")
        ghost = Campaign(id=-1, stream=Stream.BULLETINS)
        session.get(Campaign, -1, options=[joinedload(Campaign.attachments)])
        recover(-1, -1)
        _status(-1)
        _still_reachable(ghost, _claim(-1, -1, 1) or [_Row(-1)])
        _update_by_id([{"id": -1, "status": DeliveryStatus.SENT, "error": None, "updated_at": utcnow(),
                        "message_id": None, "sent_at": utcnow()}])
        session.rollback()
        _schedule_retry(-1, -1)
        campaigns.finish_if_done(-1)
    except Exception:  # noqa: BLE001
        logging.getLogger("mailer").warning("could not prepare the worker for batch jobs", exc_info=True)
    finally:
        session.rollback()
        session.expunge_all()
    # What the worker has built so far is kept out of the collector's way, so a work-horse does
    # not copy the worker's memory page by page just by collecting it (Python's advice for forks).
    gc.freeze()


class _Row:
    def __init__(self, member_id):
        self.member_id = member_id


def _status(campaign_id: int) -> CampaignStatus | None:
    return session.scalar(select(Campaign.status).where(Campaign.id == campaign_id))


def _send(campaign_id: int, batch_no: int, lock) -> dict:
    campaign = session.get(Campaign, campaign_id, options=[joinedload(Campaign.attachments)])
    if campaign is None or campaign.status is not CampaignStatus.SENDING:
        return {"skipped": campaign.status.value if campaign else "gone"}
    cfg = current_app.config
    recover(campaign_id, batch_no)
    _fewer_syncs()
    messages = CampaignMessages(campaign)
    relay = limiter()
    journal = Journal(queue.redis_connection(), campaign_id)
    totals = {s.value: 0 for s in DeliveryStatus}
    with SmtpSession(relay) as smtp, closing(journal):
        extended = time.monotonic()
        while True:
            rows = _claim(campaign_id, batch_no, chunk_size(cfg))  # nothing once paused or cancelled
            if not rows:
                break
            rows, suppressed, members = _still_reachable(campaign, rows)
            outcomes = [Outcome(r.id, r.member_id, DeliveryStatus.SUPPRESSED, error="unsubscribed or suppressed")
                        for r in suppressed]
            for row in rows:
                outcomes.append(_send_one(smtp, relay, messages, row, members.get(row.member_id), journal))
            journal.confirm()
            _record(campaign_id, outcomes)
            for o in outcomes:
                totals[o.status.value] += 1
            if time.monotonic() - extended > cfg["BATCH_LOCK_TTL"] / 10:  # not a round trip per chunk
                lock.extend(cfg["BATCH_LOCK_TTL"], replace_ttl=True)
                extended = time.monotonic()
    _schedule_retry(campaign_id, batch_no)
    campaigns.finish_if_done(campaign_id)
    return {k: v for k, v in totals.items() if v}


def _fewer_syncs() -> None:
    """On SQLite (in WAL mode), this job's connection syncs the log at checkpoints rather than at
    every commit: a commit survives the process being killed, only not the machine losing power,
    and a chunk's two commits no longer hold the write lock through a disk flush each."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("PRAGMA synchronous=NORMAL"))


def recover(campaign_id: int, batch_no: int) -> int:
    """Settle rows a killed run left claimed: sent if the journal saw them accepted, else queued."""
    stuck = session.scalars(select(Delivery.id).where(Delivery.campaign_id == campaign_id,
                                                      Delivery.batch_no == batch_no,
                                                      Delivery.status == DeliveryStatus.SENDING)).all()
    if not stuck:
        return 0
    redis = queue.redis_connection()
    seen = redis.hmget(journal_key(campaign_id), [str(i) for i in stuck])
    now = utcnow()
    session.execute(update(Delivery), [
        {"id": i, "status": DeliveryStatus.SENT, "message_id": mid.decode(), "sent_at": now, "error": None}
        if mid else {"id": i, "status": DeliveryStatus.QUEUED}
        for i, mid in zip(stuck, seen)])
    session.commit()
    redis.hdel(journal_key(campaign_id), *[str(i) for i in stuck])
    return len(stuck)


def _claim(campaign_id: int, batch_no: int, size: int):
    """Take the next rows to send (status SENDING), while the campaign is still sending: the
    campaign's status is checked in the same statement, so a pause stops the batch here."""
    due = or_(Delivery.status == DeliveryStatus.QUEUED,
              and_(Delivery.status == DeliveryStatus.DEFERRED, Delivery.next_attempt_at <= utcnow()))
    sending = exists(select(Campaign.id).where(Campaign.id == campaign_id, Campaign.status == CampaignStatus.SENDING))
    ids = select(Delivery.id).where(Delivery.campaign_id == campaign_id, Delivery.batch_no == batch_no, due, sending) \
        .order_by(Delivery.id).limit(size).scalar_subquery()
    rows = session.execute(update(Delivery).where(Delivery.id.in_(ids), due)
                           .values(status=DeliveryStatus.SENDING, attempts=Delivery.attempts + 1, updated_at=utcnow())
                           .returning(Delivery.id, Delivery.member_id, Delivery.email, Delivery.attempts)
                           .execution_options(synchronize_session=False)).all()
    session.commit()
    return sorted(rows, key=lambda r: r.id)


class Recipient:
    """What a message needs of a member, read in one query per chunk rather than as ORM objects
    (which cost more to load than the message costs to build)."""

    __slots__ = ("id", "first_name", "last_name", "email", "membership_number", "ward", "polling_district",
                 "public_id", "branch")

    def __init__(self, row):
        (self.id, self.first_name, self.last_name, self.email, self.membership_number, self.ward,
         self.polling_district, self.public_id, branch_name) = row
        self.branch = _Branch(branch_name) if branch_name is not None else None


class _Branch:
    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name


def _still_reachable(campaign: Campaign, rows):
    """Split claimed rows into those that may still be sent and those now suppressed
    (unsubscribed, objected, bounced or on hold since the snapshot), with the members to write
    to, by id: one query checks and reads them."""
    member_ids = [r.member_id for r in rows if r.member_id is not None]
    found = session.execute(
        select(Member.id, Member.first_name, Member.last_name, Member.email, Member.membership_number, Member.ward,
               Member.polling_district, Member.public_id, Branch.name)
        .outerjoin(Branch, Branch.id == Member.branch_id)
        .where(Member.id.in_(member_ids), segments.reachable(campaign.stream)))
    members = {m.id: m for m in map(Recipient, found)}
    keep = [r for r in rows if r.member_id in members]
    return keep, [r for r in rows if r.member_id not in members], members


def _send_one(smtp: SmtpSession, relay: RelayLimiter, messages: CampaignMessages, row, member,
              journal: Journal) -> Outcome:
    if member is None:
        return Outcome(row.id, row.member_id, DeliveryStatus.SUPPRESSED, error="member removed")
    relay.wait_for_token()
    env = messages.build(member, row.id, to_address=row.email)
    try:
        smtp.send(env, before_content=journal.confirm)
    except smtplib.SMTPRecipientsRefused as exc:
        code, text = next(iter(exc.recipients.values()))
        return _refused(row, code, text)
    except smtplib.SMTPResponseException as exc:  # sender refused, data refused...
        return _refused(row, exc.smtp_code, exc.smtp_error)
    except (smtplib.SMTPServerDisconnected, smtplib.SMTPException, socket.timeout, OSError) as exc:
        smtp.close()  # reopen for the next message
        return _temporary(row, f"connection lost: {exc}")
    journal.note(row.id, env.message_id)
    return Outcome(row.id, row.member_id, DeliveryStatus.SENT, message_id=env.message_id)


def _text(reply) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)


def _refused(row, code: int, reply) -> Outcome:
    message = f"{code} {_text(reply)}"[:1000]
    if 400 <= code < 500:
        return _temporary(row, message)
    return Outcome(row.id, row.member_id, DeliveryStatus.FAILED, error=message, code=code)


def _temporary(row, message: str) -> Outcome:
    if row.attempts >= current_app.config["MAX_ATTEMPTS"]:
        return Outcome(row.id, row.member_id, DeliveryStatus.FAILED,
                       error=f"gave up after {row.attempts} attempts: {message}"[:1000])
    return Outcome(row.id, row.member_id, DeliveryStatus.DEFERRED, error=message[:1000], attempts=row.attempts)


def _record(campaign_id: int, outcomes: list[Outcome]) -> None:
    """Write a chunk's outcomes in one statement, then forget them from the journal."""
    if not outcomes:
        return
    now = utcnow()
    rows = []
    for o in outcomes:
        row = {"id": o.delivery_id, "status": o.status, "error": o.error, "updated_at": now}
        if o.status is DeliveryStatus.SENT:
            row.update(message_id=o.message_id, sent_at=now)
        if o.status is DeliveryStatus.DEFERRED:
            row["next_attempt_at"] = now + backoff(o.attempts)
        rows.append(row)
    _update_by_id(rows)
    _count_against_health([o for o in outcomes if o.status is DeliveryStatus.FAILED and o.code])
    session.commit()
    sent = [str(o.delivery_id) for o in outcomes if o.status is DeliveryStatus.SENT]
    if sent:
        queue.redis_connection().hdel(journal_key(campaign_id), *sent)


def _update_by_id(rows: list[dict]) -> None:
    """UPDATE deliveries by id, one executemany per set of columns (a chunk is usually one set):
    the same statements the ORM's bulk update makes, without its bookkeeping."""
    table = Delivery.__table__
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(row), []).append(row)
    for columns, group in groups.items():
        values = {c: bindparam(c) for c in columns if c != "id"}
        session.execute(table.update().where(table.c.id == bindparam("delivery_id")).values(values),
                        [{**row, "delivery_id": row["id"]} for row in group])


def _count_against_health(failures: list[Outcome]) -> None:
    """A permanent refusal counts against the member's email health (hard ones hold the address)."""
    for o in failures:
        member = session.get(Member, o.member_id) if o.member_id else None
        if member is None:
            continue
        new = EmailHealth.ON_HOLD if o.code in HARD_CODES else EmailHealth.SOFT_BOUNCING
        if member.email_health is EmailHealth.ON_HOLD or member.email_health is new:
            continue
        audit.record("member.email_health", "member", member.id, {"email_health": [member.email_health.value, new.value]},
                     note=o.error or "", actor="sending")
        member.email_health = new


def _schedule_retry(campaign_id: int, batch_no: int) -> None:
    """Deferred rows come back after a back-off that doubles with each attempt."""
    from mailer import jobs

    row = session.execute(select(Delivery.attempts, Delivery.next_attempt_at).where(
        Delivery.campaign_id == campaign_id, Delivery.batch_no == batch_no,
        Delivery.status == DeliveryStatus.DEFERRED).order_by(Delivery.next_attempt_at).limit(1)).first()
    if row is None or _status(campaign_id) is not CampaignStatus.SENDING:
        return
    job_id = f"{campaigns.batch_job_id(campaign_id, batch_no)}-retry-{row.attempts}"
    when = max(row.next_attempt_at, utcnow())
    queue.get_queue().enqueue_at(when, jobs.send_batch, campaign_id, batch_no, job_id=job_id)
