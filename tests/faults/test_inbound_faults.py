"""Inbound under faults: the worker killed while processing, and the same messages arriving by
two transports at once. Every stored message is processed exactly once: one thread each."""

from __future__ import annotations

import os
import signal
import smtplib
import threading

import pytest
from sqlalchemy import func, select

from mailer.db import session
from mailer.models import InboundMessage, InboundStatus, Thread
from tests.conftest import free_port
from tests.test_worker import wait_until

pytestmark = pytest.mark.slow

N = 300


def _raw(i: int, message_id: bool = True) -> bytes:
    head = (f"From: Writer {i} <writer{i}@example.net>\r\nTo: secretary@example.org\r\n"
            f"Subject: Letter number {i}\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\n")
    if message_id:
        head += f"Message-ID: <letter{i}@example.net>\r\n"
    return (head + f"\r\nDear Secretary,\r\n\r\nThis is letter {i}.\r\n" + "Some text to read.\r\n" * 200).encode()


def _count(*where) -> int:
    session.rollback()
    return session.scalar(select(func.count()).select_from(InboundMessage).where(*where))


def _record(name: str, stored: int, processed: int, threads: int, finished: bool) -> None:
    import json

    with open(os.environ["MAILER_TEST_FAULTS_RESULTS"], "a") as out:
        out.write(json.dumps({"case": name, "targeted": stored, "once": min(processed, threads),
                              "twice": max(0, threads - stored), "never": stored - processed, "failed_5xx": 0,
                              "cancelled": 0, "finished": finished, "seconds": 0}) + "\n")


def test_inbound_worker_killed_mid_processing(case):
    from mailer.inbound import store

    for i in range(N):
        store.store(_raw(i), "file")  # stored and queued, as a transport does
        session.commit()  # the caller's commit queues its processing
    first = case.worker()
    wait_until(lambda: _count(InboundMessage.status == InboundStatus.PROCESSED) >= N // 5, 120,
               "some messages processed", case.logs[-1])
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(10)
    case.worker()
    finished = True
    try:
        wait_until(lambda: _count(InboundMessage.status == InboundStatus.PROCESSED) == N, 180,
                   "every message processed after the restart", case.logs[-1])
    except AssertionError:
        finished = False
    threads = session.scalar(select(func.count()).select_from(Thread))
    processed = _count(InboundMessage.status == InboundStatus.PROCESSED)
    _record("inbound_worker_killed_mid_processing", N, processed, threads, finished)
    assert finished and processed == N
    assert threads == N  # each letter its own thread, once: nothing processed twice
    assert _count(InboundMessage.attempts > 2) == 0


def test_same_messages_by_smtp_and_by_file_at_once(case, app):
    from mailer.inbound import smtpd, store

    controller = smtpd.make_controller(app, "127.0.0.1", free_port())
    controller.start()
    errors = []

    def by_smtp():
        try:
            with smtplib.SMTP("127.0.0.1", controller.port, timeout=30) as client:
                for i in range(N // 3):
                    client.sendmail(f"writer{i}@example.net", ["secretary@example.org"], _raw(i, message_id=i % 2 == 0))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    def by_file():
        try:
            with app.app_context():
                for i in range(N // 3):
                    store.store(_raw(i, message_id=i % 2 == 0).replace(b"\r\n", b"\n"), "file")
                    session.commit()  # the caller's commit queues its processing
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    try:
        threads = [threading.Thread(target=by_smtp), threading.Thread(target=by_file)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        controller.stop()
    assert not errors, errors
    assert _count() == N // 3  # half of them without a Message-ID: one message each all the same
    case.worker()
    finished = True
    try:
        wait_until(lambda: _count(InboundMessage.status == InboundStatus.PROCESSED) == N // 3, 120,
                   "every message processed", case.logs[-1])
    except AssertionError:
        finished = False
    threads_made = session.scalar(select(func.count()).select_from(Thread))
    _record("inbound_same_messages_two_transports", N // 3, _count(InboundMessage.status == InboundStatus.PROCESSED),
            threads_made, finished)
    assert finished and threads_made == N // 3
