"""Outgoing mail through Flask-Mail: the configured relay, or the local catcher under `mailer up`."""

from __future__ import annotations

from flask import Flask
from flask_mail import Mail, Message

mail = Mail()


def init_app(app: Flask) -> None:
    """Bind Flask-Mail to the app's MAIL_* settings."""
    mail.init_app(app)


def send_message(to: str, subject: str, body: str) -> None:
    """Send one plain-text service message (password resets and the like) now."""
    mail.send(Message(subject=subject, recipients=[to], body=body))
