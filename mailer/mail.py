"""Outgoing mail through Flask-Mail: the configured relay, or the local catcher under `mailer up`."""

from __future__ import annotations

import smtplib

from flask import Flask, current_app
from flask_mail import Connection, Mail, Message

SMTP_TIMEOUT = 300  # seconds any one read or write may wait: RFC 5321's 5 minutes for a command's reply


class _TimedConnection(Connection):
    """Flask-Mail's connection with a socket timeout: without one, a relay that stops answering
    holds the sender forever."""

    def configure_host(self) -> smtplib.SMTP:
        timeout = current_app.config.get("SMTP_TIMEOUT", SMTP_TIMEOUT)
        cls = smtplib.SMTP_SSL if self.mail.use_ssl else smtplib.SMTP
        host = cls(self.mail.server, self.mail.port, timeout=timeout)
        host.set_debuglevel(int(self.mail.debug))
        if self.mail.use_tls:
            host.starttls()
        if self.mail.username and self.mail.password:
            host.login(self.mail.username, self.mail.password)
        return host


class _Mail(Mail):
    def connect(self) -> Connection:
        return _TimedConnection(current_app.extensions["mail"])


mail = _Mail()


def init_app(app: Flask) -> None:
    """Bind Flask-Mail to the app's MAIL_* settings."""
    mail.init_app(app)


def dkim_signer():
    """A function signing message bytes with DKIM, when a key is configured (else None): every
    kind of message Mailer sends is signed by it."""
    cfg = current_app.config
    if not cfg.get("DKIM_PRIVATE_KEY"):
        return None
    import dkim

    key = cfg["DKIM_PRIVATE_KEY"].encode()
    sender_domain = str(cfg["SENDER_ADDRESS"]).rpartition("@")[2] or "localhost"
    selector, domain = cfg["DKIM_SELECTOR"].encode(), (cfg["DKIM_DOMAIN"] or sender_domain).encode()
    headers = [b"from", b"to", b"subject", b"date", b"message-id", b"reply-to", b"list-id", b"list-unsubscribe",
               b"list-unsubscribe-post", b"mime-version", b"content-type"]

    def sign(data: bytes) -> bytes:
        return dkim.sign(data, selector, domain, key, include_headers=headers) + data

    return sign


def send_message(to: str, subject: str, body: str) -> None:
    """Send one plain-text service message (password resets and the like) now, DKIM-signed when
    a key is configured, like every other message Mailer sends."""
    message = Message(subject=subject, recipients=[to], body=body)
    sign = dkim_signer()
    if sign is None:
        mail.send(message)
        return
    with mail.connect() as conn:
        conn.host.sendmail(message.sender, [to], sign(message.as_bytes()))  # smtplib takes the address out
