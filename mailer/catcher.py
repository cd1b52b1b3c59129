"""The local mail catcher: a real SMTP server (aiosmtpd) that keeps every message it is sent in a
Maildir in the instance folder, so a new user sees Mailer's email without a relay. It is an
endpoint of the SMTP transport (mailer/smtp.py), reached exactly as a relay would be."""

from __future__ import annotations

import email
import email.policy
import mailbox
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

from aiosmtpd.controller import Controller


class _KeepInMaildir:
    def __init__(self, path: Path):
        self.box = mailbox.Maildir(path, create=True)

    async def handle_DATA(self, server, session, envelope):
        # Record the envelope too: it is what the relay would have acted on.
        head = (f"X-Envelope-From: {envelope.mail_from}\r\n"
                f"X-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n").encode()
        self.box.add(head + envelope.original_content)
        return "250 Message accepted for delivery"


def start(path: Path, host: str = "127.0.0.1", port: int = 1025) -> Controller:
    """Start the catcher on host:port in a background thread; returns its controller (call .stop())."""
    controller = Controller(_KeepInMaildir(path), hostname=host, port=port)
    controller.start()
    return controller


@dataclass
class CaughtMessage:
    key: str
    received: datetime | None
    sender: str
    to: str
    subject: str
    message: email.message.EmailMessage


def messages(path: Path, limit: int = 200) -> list[CaughtMessage]:
    """The newest caught messages first."""
    box = mailbox.Maildir(path, create=True)
    out = []
    for key in box.keys():
        out.append(read(path, key))
    out.sort(key=lambda m: (m.received is None, m.received), reverse=True)
    return out[:limit]


def read(path: Path, key: str) -> CaughtMessage:
    """One caught message by its Maildir key (KeyError when there is none)."""
    raw = mailbox.Maildir(path, create=True).get_bytes(key)
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    try:
        received = parsedate_to_datetime(msg["Date"]) if msg["Date"] else None
    except (TypeError, ValueError):
        received = None
    return CaughtMessage(key, received, str(msg.get("From", "")), str(msg.get("To", "")),
                         str(msg.get("Subject", "")), msg)


def raw_bytes(path: Path, key: str) -> bytes:
    return mailbox.Maildir(path, create=True).get_bytes(key)
