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


def send_message(to: str, subject: str, body: str) -> None:
    """Send one plain-text service message (password resets and the like) now."""
    mail.send(Message(subject=subject, recipients=[to], body=body))
