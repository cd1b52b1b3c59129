"""An SMTP or LMTP receiver (aiosmtpd) for a hand-off from Postfix or an MX.

Each message is stored through store.store() and answered 250 only once it is committed; when
storing fails the answer is 451, so the sending server keeps the message and tries again: nothing
is lost. aiosmtpd runs its handlers in an event loop thread; the database work runs in a worker
thread of its own (so one slow commit does not stall other connections), inside a fresh app
context per message.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP
from flask import Flask

from mailer.inbound.formats import with_trace

log = logging.getLogger("mailer.inbound.smtpd")


class InboundHandler:
    """aiosmtpd handler: DATA -> store() -> 250 (or 451)."""

    def __init__(self, app: Flask, lmtp: bool = False):
        self.app, self.lmtp = app, lmtp

    def _store(self, raw: bytes, mail_from: str, rcpt_tos: list[str]) -> tuple[int, bool]:
        from mailer.db import session
        from mailer.inbound.store import store

        received = raw
        # As a final delivery agent: the envelope sender and recipients become trace headers
        # (Return-Path <> marks a bounce; the reply token may be only in the envelope).
        raw = with_trace(raw, rcpt_tos)
        eol = b"\r\n" if raw.split(b"\n", 1)[0].endswith(b"\r") else b"\n"
        sender = " ".join((mail_from or "").split())
        if sender.startswith("<") and sender.endswith(">"):  # aiosmtpd gives the null sender as "<>"
            sender = sender[1:-1]
        raw = b"Return-Path: <" + sender.encode("utf-8") + b">" + eol + raw
        with self.app.app_context():
            message, created = store(raw, "lmtp" if self.lmtp else "smtp", as_received=received)
            session.commit()  # the handler's one commit: 250 only once the message is kept
            return message.id, created

    async def handle_DATA(self, server, session, envelope):
        recipients = list(envelope.rcpt_tos)
        try:
            message_id, created = await asyncio.to_thread(self._store, envelope.original_content or b"",
                                                          envelope.mail_from, recipients)
        except Exception:  # noqa: BLE001 - a temporary failure: the sender keeps the message and retries
            log.exception("could not store a message from %s", envelope.mail_from)
            reply = "451 4.3.0 Could not store the message; try again later"
        else:
            reply = f"250 2.0.0 {'Stored' if created else 'Already held'} as inbound message {message_id}"
        # LMTP answers DATA once per recipient (RFC 2033); the message is stored once for all.
        return "\r\n".join([reply] * len(recipients)) if self.lmtp else reply


class InboundController(Controller):
    """aiosmtpd's threaded Controller, speaking LMTP when asked."""

    def __init__(self, handler: InboundHandler, **kwargs):
        super().__init__(handler, **kwargs)
        self.lmtp = handler.lmtp

    def factory(self):
        return (LMTP if self.lmtp else SMTP)(self.handler, **self.SMTP_kwargs)


def make_controller(app: Flask, host: str = "127.0.0.1", port: int = 2525, lmtp: bool = False) -> InboundController:
    """A receiver for `app`, not yet started; it refuses messages over twice INBOUND_MAX_BYTES (552)."""
    return InboundController(InboundHandler(app, lmtp), hostname=host, port=port,
                             data_size_limit=int(app.config["INBOUND_MAX_BYTES"]) * 2,
                             enable_SMTPUTF8=True, ident="Mailer inbound")


def serve(app: Flask, host: str, port: int, lmtp: bool = False, ready=None) -> None:
    """Run the receiver until SIGINT or SIGTERM."""
    controller = make_controller(app, host, port, lmtp)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    controller.start()
    try:
        if ready is not None:
            ready(controller)
        stop.wait()
    finally:
        controller.stop()
