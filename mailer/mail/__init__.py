"""The one way mail leaves Mailer: a transport (Warehouse's swappable email sender).

Every message Mailer sends, whatever made it (a campaign's batch, a test send, a reply to a
member, a password reset), is handed over as finished bytes with its envelope. The transport
signs those final bytes with DKIM when a key is configured, waits for the relay's limits
(shared by every worker, in Redis), sends, and says per recipient whether the message was
accepted or refused for now or for good. MAIL_TRANSPORT chooses the implementation:

- "smtp" (mailer/mail/smtp.py): the configured relay, or the local catcher `mailer up` runs, an SMTP
  endpoint like any relay;
- "memory": kept in the app's outbox (`outbox()`), for tests and for looking at final bytes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formatdate, make_msgid
from enum import Enum
from typing import NamedTuple

from flask import Flask, current_app
from flask_mail import Mail
from redis.exceptions import RedisError

from mailer.mail.ratelimit import Limits, RelayLimiter

mail = Mail()  # Flask-Mail's settings object (MAIL_*): the names its documentation gives
PAGE_PATIENCE = 10  # seconds a page's send (a test send) waits for the relay's limits before saying "not now"


def init_app(app: Flask) -> None:
    """Bind Flask-Mail to the app's MAIL_* settings; MAIL_TRANSPORT says how mail leaves."""
    mail.init_app(app)
    if app.config["MAIL_TRANSPORT"] not in TRANSPORTS:
        raise ValueError(f"MAIL_TRANSPORT must be one of {', '.join(TRANSPORTS)}")


class RelayUnavailable(RuntimeError):
    """The relay could not be reached or refused the connection (a 421 greeting, say): a batch
    waits as a whole, rather than each message spending an attempt."""

    def __init__(self, why: str, code: int | None = None):
        super().__init__(why)
        self.code = code


class NotSent(Exception):
    """A message that must go now (a test send) did not: the result says why, and `cause` is the
    exception behind it when there was one (the relay could not be reached: a diagnosis reads it)."""

    def __init__(self, result: Result):
        super().__init__(str(result))
        self.result, self.cause = result, result.cause


class Verdict(Enum):
    ACCEPTED = "accepted"
    TEMPORARY = "temporary"  # 4xx, or the connection lost: try again later
    PERMANENT = "permanent"  # 5xx: not again


@dataclass(frozen=True)
class Result:
    """What became of one recipient: the verdict, the relay's code (None when it never answered),
    its words, and the exception behind a failure when there was one (not compared)."""

    verdict: Verdict
    code: int | None = None
    reply: str = ""
    cause: BaseException | None = field(default=None, compare=False, repr=False)

    @property
    def accepted(self) -> bool:
        return self.verdict is Verdict.ACCEPTED

    @classmethod
    def of(cls, code: int, reply: bytes | str = "", cause: BaseException | None = None) -> Result:
        text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
        verdict = (Verdict.ACCEPTED if 200 <= code < 300 else Verdict.TEMPORARY if 400 <= code < 500
                   else Verdict.PERMANENT)
        return cls(verdict, code, text, cause)

    @classmethod
    def lost(cls, why: str, cause: BaseException | None = None) -> Result:
        return cls(Verdict.TEMPORARY, None, why, cause)

    def __str__(self) -> str:
        return f"{self.code} {self.reply}" if self.code is not None else self.reply


Result.ACCEPTED = Result(Verdict.ACCEPTED, 250, "OK")


class Upcoming(NamedTuple):
    """The message a sender will hand to the same connection next (its bytes as built)."""

    sender: str
    recipients: list[str]
    data: bytes


class Connection:
    """One open connection of a transport: many messages may go through it, one after another."""

    def __init__(self, limiter: RelayLimiter, sign, patience: float | None):
        self.limiter, self.sign, self.patience = limiter, sign, patience
        self._presigned: tuple[bytes, bytes] | None = None  # (as built, as signed) of a message announced ahead

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, sender: str, recipients: list[str], data: bytes, before_content=None,
             then: Upcoming | None = None) -> dict[str, Result]:
        """Send `data` (the message as built, unsigned) to `recipients`, with `sender` as the
        envelope sender: after the relay's rate limit allows, DKIM-signed. A result per recipient;
        RelayUnavailable when the relay cannot be reached at all. `before_content` is called once
        the relay has taken the envelope, just before the content goes out. `then`: the message
        the caller will send next on this connection, if it knows it (a relay that pipelines
        takes its envelope in the same write as this message's end)."""
        if not self.limiter.wait_for_token(give_up_after=self.patience):
            return dict.fromkeys(recipients, Result.lost("the relay's sending limit is reached: try again shortly"))
        return self._send(sender, recipients, self.signed(data), before_content, then)

    def signed(self, data: bytes) -> bytes:
        """The final bytes of a message: DKIM-signed when a key is configured (once: a message
        announced ahead was signed then)."""
        if self.sign is None:
            return data
        if self._presigned is not None and self._presigned[0] is data:
            return self._presigned[1]
        signed = self.sign(data)
        self._presigned = (data, signed)
        return signed

    def _send(self, sender, recipients, data, before_content, then) -> dict[str, Result]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class Transport:
    """How mail leaves: `connect()` for many messages on one connection, `send()` for one."""

    def connect(self, patience: float | None = None, many: bool = False) -> Connection:
        """A connection that waits at most `patience` seconds for the relay's limits (None: as
        long as it takes, for jobs; a page gives up sooner). `many`: for a run of messages (a
        batch), which takes the relay's tokens from Redis a few at a time."""
        return self._connection(relay_limiter(RelayLimiter.BLOCK_MAX if many else 1), dkim_signer(), patience)

    def send(self, sender: str, recipients: list[str], data: bytes, patience: float | None = None) -> dict[str, Result]:
        """One message on a connection of its own; a relay that cannot be reached is a temporary
        failure (or permanent, when it refused with a 5xx) for every recipient, and so is a Redis
        that cannot say what the relay's limits allow. The result keeps the exception as its cause."""
        try:
            with self.connect(patience) as conn:
                return conn.send(sender, recipients, data)
        except RelayUnavailable as exc:
            why = str(exc)
            result = (Result.of(exc.code, why.removeprefix(f"{exc.code} "), cause=exc) if exc.code
                      else Result.lost(why, cause=exc))
        except RedisError as exc:
            result = Result.lost(f"the relay's limits could not be read from Redis: {exc}", cause=exc)
        return dict.fromkeys(recipients, result)

    def _connection(self, limiter, sign, patience) -> Connection:
        raise NotImplementedError


@dataclass
class Sent:
    """A message the memory transport kept: the envelope and the final bytes."""

    sender: str
    recipients: list[str]
    data: bytes


class MemoryTransport(Transport):
    """Keeps every message in the app's outbox instead of sending it (MAIL_TRANSPORT = "memory")."""

    def _connection(self, limiter, sign, patience) -> Connection:
        return _MemoryConnection(limiter, sign, patience)


class _MemoryConnection(Connection):
    def _send(self, sender, recipients, data, before_content, then) -> dict[str, Result]:
        if before_content is not None:
            before_content()
        with _outbox_lock:
            outbox().append(Sent(sender, list(recipients), data))
        return dict.fromkeys(recipients, Result.ACCEPTED)


_outbox_lock = threading.Lock()


def outbox() -> list[Sent]:
    """What the memory transport has kept for this app, oldest first."""
    return current_app.extensions.setdefault("mailer.outbox", [])


def _smtp() -> Transport:
    from mailer.mail.smtp import SmtpTransport

    return SmtpTransport()


TRANSPORTS = {"smtp": _smtp, "memory": MemoryTransport}


def transport() -> Transport:
    """The configured transport (MAIL_TRANSPORT)."""
    return TRANSPORTS[current_app.config["MAIL_TRANSPORT"]]()


def relay_limiter(block: int = 1) -> RelayLimiter:
    """The relay's limits (RATE_*), shared through Redis by every worker and page (`block`: see
    RelayLimiter)."""
    from mailer import queue

    cfg = current_app.config
    limits = Limits(cfg["RATE_PER_MINUTE"], cfg["RATE_PER_HOUR"], cfg["RATE_PER_DAY"], cfg["RATE_CONNECTIONS"])
    if not limits.any and not limits.connections:
        return _NO_LIMITS
    return RelayLimiter(queue.redis_connection(), cfg.get("MAIL_SERVER") or "default", limits, block)


class _NoLimits:
    """No limits configured: nothing to ask Redis (a page's test send needs no queue)."""

    def wait_for_token(self, *args, **kwargs) -> bool:
        return True

    def acquire_connection(self, *args, **kwargs) -> bool:
        return True

    def release_connection(self) -> None:
        pass


_NO_LIMITS = _NoLimits()


def dkim_signer():
    """A function signing message bytes with DKIM, when a key is configured (else None): the
    transport signs every message's final bytes with it."""
    cfg = current_app.config
    if not cfg.get("DKIM_PRIVATE_KEY"):
        return None
    import dkim

    key = cfg["DKIM_PRIVATE_KEY"].encode()
    sender_domain = domain_of(str(cfg["SENDER_ADDRESS"]))
    selector, domain = cfg["DKIM_SELECTOR"].encode(), (cfg["DKIM_DOMAIN"] or sender_domain).encode()
    headers = [b"from", b"to", b"subject", b"date", b"message-id", b"reply-to", b"list-id", b"list-unsubscribe",
               b"list-unsubscribe-post", b"mime-version", b"content-type", b"in-reply-to", b"references"]

    def sign(data: bytes) -> bytes:
        return dkim.sign(data, selector, domain, key, include_headers=headers) + data

    return sign


def domain_of(addr: str) -> str:
    return addr.rpartition("@")[2] or "localhost"


def service_message(to: str, subject: str, body: str, message_id: str | None = None, date=None) -> EmailMessage:
    """A plain-text message from the sender (password resets, replies to members), with the
    headers a receiving filter expects of a well-made message."""
    from mailer.mail.mime import address

    cfg = current_app.config
    msg = EmailMessage(policy=SMTP)
    msg["From"] = address(cfg["SENDER_NAME"], cfg["SENDER_ADDRESS"])
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date) if date is not None else formatdate(usegmt=True)
    msg["Message-ID"] = message_id or make_msgid(domain=cfg["MESSAGE_ID_DOMAIN"] or domain_of(cfg["SENDER_ADDRESS"]))
    msg["Reply-To"] = address(cfg["SENDER_NAME"], cfg["REPLY_ADDRESS"])
    msg.set_content(body)
    return msg


def send_now(sender: str, to: str, data: bytes, patience: float | None = None) -> None:
    """Send one message to one recipient, or raise NotSent with the relay's answer (raised from the
    exception behind it, when there was one)."""
    result = transport().send(sender, [to], data, patience=patience)[to]
    if not result.accepted:
        raise NotSent(result) from result.cause


def send_message(to: str, subject: str, body: str) -> None:
    """Send one plain-text service message (a password reset) through the transport now, or raise
    NotSent (the job fails, and says why)."""
    send_now(envelope_sender(), to, service_message(to, subject, body).as_bytes())


def envelope_sender() -> str:
    """Where a service message's bounces go: the bounce address, else the reply mailbox."""
    cfg = current_app.config
    return cfg["BOUNCE_ADDRESS"] or cfg["REPLY_ADDRESS"]
