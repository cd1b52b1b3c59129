"""The SMTP transport: Mailer's own conversation with the relay (or `mailer up`'s local catcher,
which is an SMTP endpoint like any relay), on smtplib's connection.

One connection is reused for many messages and reopened once the relay drops it (a 421). With
PIPELINING (RFC 2920, offered by Postfix, Exchange and Gmail alike) MAIL, RCPT and DATA go in one
write, and in a run of messages that write goes with the previous message's end of data, so a
message costs one round trip instead of four; the message, whose lines all end in CRLF already,
is dot-stuffed with one replace rather than smtplib's regex.
"""

from __future__ import annotations

import re
import smtplib
import socket

from flask import current_app

from mailer.mail import Connection, RelayUnavailable, Result, Transport

SMTP_TIMEOUT = 300  # seconds any one read or write may wait: RFC 5321's 5 minutes for a command's reply


class SmtpTransport(Transport):
    """The configured relay: MAIL_SERVER, MAIL_PORT, MAIL_USE_TLS (STARTTLS), MAIL_USE_SSL,
    MAIL_USERNAME and MAIL_PASSWORD (Flask-Mail's names), with a timeout on every read and write."""

    def _connection(self, limiter, sign, patience) -> Connection:
        return SmtpConnection(limiter, sign, patience)


def open_host() -> smtplib.SMTP:
    """A logged-in smtplib connection to the configured relay."""
    cfg = current_app.config
    timeout = cfg.get("SMTP_TIMEOUT", SMTP_TIMEOUT)
    cls = smtplib.SMTP_SSL if cfg.get("MAIL_USE_SSL") else smtplib.SMTP
    host = cls(cfg.get("MAIL_SERVER") or "localhost", int(cfg.get("MAIL_PORT") or 25), timeout=timeout)
    try:
        if cfg.get("MAIL_USE_TLS"):
            host.starttls()
        if cfg.get("MAIL_USERNAME") and cfg.get("MAIL_PASSWORD"):
            host.login(cfg["MAIL_USERNAME"], cfg["MAIL_PASSWORD"])
        host.ehlo_or_helo_if_needed()
    except BaseException:
        host.close()
        raise
    return host


class SmtpConnection(Connection):
    """One relay connection, reopened when the relay drops it, holding one of the relay's
    connection slots while open.

    With PIPELINING, the envelope of the message the caller will send next (`then`) goes out in
    the same write as this message's end of data (RFC 2920 lets the content open a group of
    commands), so each message costs one round trip. Its content is only written once the caller
    has heard this message's 250 and asks for the next one: a run stopped between the two leaves
    an envelope without content, which the relay cannot deliver; the connection is then dropped
    rather than ended with QUIT (it is waiting for content)."""

    def __init__(self, limiter, sign, patience):
        super().__init__(limiter, sign, patience)
        self.host: smtplib.SMTP | None = None
        self.ahead: tuple[str, tuple[str, ...], bytes] | None = None  # announced, its replies unread

    def open(self) -> smtplib.SMTP:
        if self.host is None:
            slot_wait = 300 if self.patience is None else self.patience
            if not self.limiter.acquire_connection(timeout=slot_wait):
                raise smtplib.SMTPServerDisconnected("no relay connection slot became free")
            try:
                self.host = open_host()
            except (smtplib.SMTPException, OSError) as exc:
                self.limiter.release_connection()
                raise RelayUnavailable(why(exc), getattr(exc, "smtp_code", None)) from exc
            except BaseException:
                self.limiter.release_connection()
                raise
        return self.host

    def close(self) -> None:
        if self.ahead is not None:
            self._abandon()  # the relay waits for the announced message's content: nothing more to say
        if self.host is not None:
            host, self.host = self.host, None
            try:
                host.quit()
            except (smtplib.SMTPException, OSError):
                host.close()
            self.limiter.release_connection()

    def _abandon(self) -> None:
        """Drop the connection without QUIT (mid-DATA: nothing half-sent may be delivered)."""
        self.ahead = None
        if self.host is not None:
            self.host.close()
            self.host = None
            self.limiter.release_connection()

    def _send(self, sender: str, recipients: list[str], data: bytes, before_content, then) -> dict[str, Result]:
        """RelayUnavailable when no connection can be opened; a result per recipient otherwise (a
        connection lost on the way: temporary, with no code; the next message reopens it).
        `before_content` is called once the relay has taken the envelope, just before the content."""
        if self.ahead is not None and self.ahead != (sender, tuple(recipients), data):
            self._abandon()  # another message than the one announced: start afresh
        if self.host is not None and self.host.sock is None:
            self.close()  # the relay closed it (a 421): reopen rather than fail the next message
        try:
            host = self.open()
            if self.ahead is not None:  # its envelope went out with the last message's end
                self.ahead = None
                results = _envelope_results(host, recipients, _replies(host, len(recipients) + 2))
            else:
                results = self._envelope(host, sender, recipients, len(data))
        except (smtplib.SMTPException, socket.timeout, OSError) as exc:
            return self._lost(recipients, exc)
        accepted = [r for r in recipients if results[r].accepted]
        if not accepted:
            return results
        if before_content is not None:
            try:
                before_content()
            except BaseException:
                self._abandon()  # mid-DATA: drop the connection, so nothing half-sent is delivered
                raise
        announce = self._announcement(host, then)
        try:
            host.send(dot_stuffed(data) + announce)
            code, reply = host.getreply()
            if code == 421:
                self._abandon()  # the relay is closing: what was announced is lost with it
            elif code != 250 and not announce:
                _reset_or_close(host, code)
        except (smtplib.SMTPException, socket.timeout, OSError) as exc:
            return results | self._lost(accepted, exc)
        return results | dict.fromkeys(accepted, Result.of(code, reply))

    def _announcement(self, host, then) -> bytes:
        """The next message's envelope, to go out with this one's end, when the relay pipelines."""
        if then is None or not _pipelines(host):
            return b""
        data = self.signed(then.data)
        self.ahead = (then.sender, tuple(then.recipients), data)
        return b"".join(_envelope_commands(host, then.sender, then.recipients, len(data)))

    def _lost(self, recipients: list[str], exc: BaseException) -> dict[str, Result]:
        self._abandon() if self.ahead is not None else self.close()
        return dict.fromkeys(recipients, Result.lost(f"connection lost: {exc}"))

    @staticmethod
    def _envelope(host, sender: str, recipients: list[str], size: int) -> dict[str, Result]:
        """MAIL, RCPT for each recipient, DATA: in one write when the relay pipelines, else one at a
        time, stopping at a refused MAIL or when no recipient was taken."""
        host.ehlo_or_helo_if_needed()
        mail, *rcpts, data = _envelope_commands(host, sender, recipients, size)
        if _pipelines(host):
            host.send(b"".join([mail, *rcpts, data]))
            replies = _replies(host, len(recipients) + 2)
        else:
            replies = [_command(host, mail)]
            if replies[0][0] == 250:
                replies += [_command(host, rcpt) for rcpt in rcpts]
                if any(code in (250, 251) for code, _ in replies[1:]):
                    replies.append(_command(host, data))
        return _envelope_results(host, recipients, replies)


def _pipelines(host: smtplib.SMTP) -> bool:
    return host.does_esmtp and host.has_extn("pipelining")


def _envelope_commands(host, sender: str, recipients: list[str], size: int) -> list[bytes]:
    """MAIL FROM (with SIZE, and SMTPUTF8 for an internationalised address, when offered), a RCPT
    TO per recipient, DATA: each a line ending in CRLF."""
    options = f" size={size}" if host.does_esmtp and host.has_extn("size") else ""
    if not (sender + "".join(recipients)).isascii() and host.has_extn("smtputf8"):
        options += " SMTPUTF8"  # an internationalised address (RFC 6531); without it the relay decides
    return [f"MAIL FROM:{smtp_address(sender)}{options}\r\n".encode(),
            *(f"RCPT TO:{smtp_address(r)}\r\n".encode() for r in recipients), b"DATA\r\n"]


def _replies(host: smtplib.SMTP, count: int) -> list[tuple[int, bytes]]:
    return [host.getreply() for _ in range(count)]


def _command(host: smtplib.SMTP, command: bytes) -> tuple[int, bytes]:
    host.send(command)
    return host.getreply()


def _envelope_results(host, recipients: list[str], replies: list[tuple[int, bytes]]) -> dict[str, Result]:
    """Each recipient's result from the replies to MAIL, RCPT..., DATA: accepted (so far) where the
    relay took the recipient and the DATA; its refusal otherwise. When nobody can be sent to, a
    DATA the relay took anyway is ended at once with an empty body, which it cannot deliver."""
    (mail_code, mail_reply), rest = replies[0], replies[1:]
    rcpts = rest[:len(recipients)]
    data_code, data_reply = rest[len(recipients)] if len(rest) > len(recipients) else (None, b"")
    rcpt_ok = [code in (250, 251) for code, _ in rcpts]
    if mail_code == 250 and any(rcpt_ok) and data_code == 354:
        return {r: Result.ACCEPTED if ok else Result.of(*reply) for r, ok, reply in zip(recipients, rcpt_ok, rcpts)}
    if data_code == 354:
        host.send(b".\r\n")
        host.getreply()
    if mail_code != 250:
        _reset_or_close(host, mail_code)
        return dict.fromkeys(recipients, Result.of(mail_code, mail_reply))
    if not any(rcpt_ok):
        _reset_or_close(host, next(code for code, _ in rcpts if code not in (250, 251)))
        return {r: Result.of(*rcpts[i]) for i, r in enumerate(recipients)}
    _reset_or_close(host, data_code or 503)
    return dict.fromkeys(recipients, Result.of(data_code or 503, data_reply))


def why(exc: BaseException) -> str:
    """A relay failure in a short line, for logs and the campaign's page."""
    if isinstance(exc, smtplib.SMTPResponseException):
        reply = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return f"{exc.smtp_code} {reply}"[:200]
    return (f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)[:200]


def smtp_address(address: str) -> str:
    """<address> for MAIL FROM and RCPT TO, as smtplib quotes it (its parsing only when needed)."""
    if _PLAIN_ADDRESS.fullmatch(address):
        return f"<{address}>"
    return smtplib.quoteaddr(address)


_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_ADDRESS = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")


def dot_stuffed(data: bytes) -> bytes:
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
