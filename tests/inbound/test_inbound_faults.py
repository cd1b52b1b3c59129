"""Inbound under faults: any byte in any header is stored and processed (on PostgreSQL too), one
message arriving by two transports is one message, and a job killed mid-processing is picked up
again by reconcile, never while a live job holds the message."""

from __future__ import annotations

import smtplib
from datetime import timedelta

from sqlalchemy import select

from mailer import jobs
from mailer import queue
from mailer.db import session, utcnow
from mailer.inbound import process, smtpd, store
from mailer.models import InboundMessage, InboundStatus, MessageReference
from tests.conftest import free_port
from tests.sending.conftest import run_queue


def _bare(message_id: bool = True, extra: bytes = b"") -> bytes:
    head = (b"From: Ann Member <ann@example.org>\r\nTo: secretary@anytown-labour.example\r\n"
            b"Subject: Re: News\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\n")
    if message_id:
        head += b"Message-ID: <bytes@mail.example.net>\r\n"
    return head + extra + b"\r\nThanks, I will come.\r\n"


def test_nul_and_stray_bytes_in_from_and_references_are_stored_and_processed(app):
    raw = (b"From: Ann\x00 Member <ann\x00@example.org>\r\nTo: secretary@anytown-labour.example\r\n"
           b"Subject: Re: News\xff\x00\r\nMessage-ID: <nul\x00id@mail.example.net>\r\n"
           b"In-Reply-To: <par\x00ent@example.org>\r\nReferences: <a\x00b@example.org> <c\xfed@example.org>\r\n"
           b"\r\nHello\x00 there\r\n")
    message, created = store.store(raw, "file")
    session.commit()  # the caller's commit queues its processing
    assert created
    assert process.process(message.id) != "failed"
    session.expire_all()
    message = session.get(InboundMessage, message.id)
    assert message.status is InboundStatus.PROCESSED, message.error
    for value in (message.from_name, message.from_address or "", message.in_reply_to or "", *message.references,
                  message.subject, message.message_id):
        assert "\x00" not in value and not any(0xD800 <= ord(c) <= 0xDFFF for c in value), value
    assert message.in_reply_to == "<par\ufffdent@example.org>"
    refs = set(session.scalars(select(MessageReference.referenced).where(
        MessageReference.inbound_message_id == message.id)))
    assert "<par\ufffdent@example.org>" in refs and len(refs) == 3


def test_one_message_by_smtp_and_by_file_is_one_message_without_a_message_id(app):
    raw = _bare(message_id=False)
    controller = smtpd.make_controller(app, "127.0.0.1", free_port())
    controller.start()
    try:
        with smtplib.SMTP("127.0.0.1", controller.port, timeout=10) as client:
            client.sendmail("ann@example.org", ["secretary@anytown-labour.example"], raw)
    finally:
        controller.stop()
    again, created = store.store(raw.replace(b"\r\n", b"\n"), "file")  # the same message, saved to a file
    session.commit()  # the caller's commit queues its processing
    assert not created and again.transport == "smtp"
    assert session.scalar(select(InboundMessage.id).where(InboundMessage.id != again.id)) is None


def test_a_message_whose_job_died_is_queued_again_once_its_claim_runs_out(app):
    message, _ = store.store(_bare(), "file")
    session.commit()  # the caller's commit queues its processing
    queue.get_queue().empty()  # its job is gone with the worker that was running it
    message.claimed_until, message.attempts = utcnow() + timedelta(minutes=5), 1  # held by a job, alive for all we know
    session.commit()
    assert jobs.reconcile_all()["inbound_jobs"] == 0
    assert process.process(message.id) == "being processed by another job"
    message = session.get(InboundMessage, message.id)
    message.claimed_until = utcnow() - timedelta(seconds=1)  # the job died: its claim ran out
    session.commit()
    assert jobs.reconcile_all()["inbound_jobs"] == 1
    assert jobs.reconcile_all()["inbound_jobs"] == 0  # queued already: not twice
    run_queue()
    session.expire_all()
    done = session.get(InboundMessage, message.id)
    assert done.status is InboundStatus.PROCESSED and done.claimed_until is None and done.attempts == 2
