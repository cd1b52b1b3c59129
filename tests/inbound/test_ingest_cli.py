"""`mailer inbound ingest FILE...`: .eml and mbox files into the store, counted, with what cannot
be mail skipped and said (and the exit status saying so)."""

from __future__ import annotations

import contextvars
import mailbox
from email import message_from_bytes, policy

import pytest
from sqlalchemy import select

from mailer import jobs
from mailer import queue
from mailer.db import session
from mailer.models import InboundMessage, InboundStatus
from tests.inbound.conftest import raw_message
from tests.sending.conftest import run_queue


@pytest.fixture
def app(make_app):
    app = make_app(SENDER_ADDRESS="secretary@anytown-labour.example", REPLY_ADDRESS="secretary@anytown-labour.example")
    with app.app_context():
        yield app


def ingest(app, *paths):
    return app.test_cli_runner().invoke(args=["inbound", "ingest", *map(str, paths)])


def stored() -> list[InboundMessage]:
    session.expire_all()
    return list(session.scalars(select(InboundMessage).order_by(InboundMessage.id)))


def test_eml_files_are_stored_once_and_processed(app, tmp_path):
    one, two = tmp_path / "one.eml", tmp_path / "two.eml"
    one.write_bytes(raw_message(subject="First", message_id="<one@mail.example.net>"))
    two.write_bytes(raw_message(subject="Second", message_id="<two@mail.example.net>").replace(b"\n", b"\r\n"))
    result = ingest(app, one, two)
    assert result.exit_code == 0, result.output
    assert "one.eml: stored" in result.output and "2 stored new, 0 already held." in result.output
    assert [m.transport for m in stored()] == ["file", "file"]
    assert stored()[1].raw == two.read_bytes()  # byte for byte

    again = ingest(app, two, one)
    assert again.exit_code == 0 and "0 stored new, 2 already held." in again.output and len(stored()) == 2

    run_queue()
    assert [(m.subject, m.status) for m in stored()] == [("First", InboundStatus.PROCESSED),
                                                         ("Second", InboundStatus.PROCESSED)]


def test_an_mbox_written_by_the_mailbox_module(app, tmp_path):
    path = tmp_path / "archive.mbox"
    box = mailbox.mbox(str(path))
    for n in range(1, 4):
        body = f"Message {n}.\nFrom the chair: a line mbox must escape.\n"
        box.add(message_from_bytes(raw_message(subject=f"Archived {n}", message_id=f"<arch{n}@mail.example.net>",
                                               body=body), policy=policy.compat32))
    box.close()
    result = ingest(app, path)
    assert result.exit_code == 0, result.output
    assert "archive.mbox #3: stored" in result.output and "3 stored new, 0 already held." in result.output
    assert [m.message_id for m in stored()] == [f"<arch{n}@mail.example.net>" for n in (1, 2, 3)]
    assert not stored()[0].raw.startswith(b"From ")  # the envelope line is not part of the message
    run_queue()
    assert [m.subject for m in stored()] == ["Archived 1", "Archived 2", "Archived 3"]


def test_an_mbox_with_a_message_that_is_not_mail_stores_the_rest_and_exits_1(app, tmp_path):
    path = tmp_path / "export.mbox"
    path.write_bytes(
        b"From ann@example.org Mon Nov 23 09:00:00 2026\n" + raw_message(message_id="<ok1@x.example>") + b"\n"
        b"From nobody Mon Nov 23 09:01:00 2026\nthis is not a message at all\njust words\n\n"
        b"From bob@example.org Mon Nov 23 09:02:00 2026\n" + raw_message(message_id="<ok2@x.example>") + b"\n")
    result = ingest(app, path)
    assert result.exit_code == 1
    assert "export.mbox #2: skipped, it has no mail headers" in result.output
    assert "2 stored new, 0 already held, 1 skipped." in result.output
    assert [m.message_id for m in stored()] == ["<ok1@x.example>", "<ok2@x.example>"]


@pytest.mark.parametrize("content, why", [
    (b"", "it is empty"),
    (b"\n\n  \n", "it is empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR binary", "no mail headers"),
    (b"Dear secretary, this was typed into a file.\n", "no mail headers"),
    (b"From \n", "it is empty"),              # a broken mbox: an envelope line and nothing else
    (b"From x\n\nno headers, only a body\n", "no mail headers"),
])
def test_files_that_are_not_mail_are_skipped_and_said(app, tmp_path, content, why):
    path = tmp_path / "bad.eml"
    path.write_bytes(content)
    good = tmp_path / "good.eml"
    good.write_bytes(raw_message(message_id="<good@x.example>"))
    result = ingest(app, path, good)
    assert result.exit_code == 1 and why in result.output
    assert "1 stored new, 0 already held, 1 skipped." in result.output
    assert [m.message_id for m in stored()] == ["<good@x.example>"]


def test_missing_files_and_folders_are_refused_before_anything_is_stored(app, tmp_path):
    good = tmp_path / "good.eml"
    good.write_bytes(raw_message())
    assert ingest(app, good, tmp_path / "missing.eml").exit_code == 2
    assert ingest(app, tmp_path).exit_code == 2
    assert ingest(app).exit_code == 2
    assert stored() == []


def test_without_redis_messages_are_stored_and_queued_when_a_worker_starts(app, make_app, tmp_path):
    path = tmp_path / "offline.eml"
    path.write_bytes(raw_message(message_id="<offline@x.example>"))
    offline = make_app(REDIS_URL="")
    # In a context of its own: the CLI would otherwise run in the test's app context (with Redis).
    result = contextvars.Context().run(offline.test_cli_runner().invoke, args=["inbound", "ingest", str(path)])
    assert result.exit_code == 0, result.output
    assert "1 stored new" in result.output and result.output.count("no job queue (Redis) is reachable") == 1
    assert "Traceback" not in result.output
    (message,) = stored()
    assert message.status is InboundStatus.RECEIVED and queue.get_queue().count == 0

    assert jobs.reconcile_all()["inbound_jobs"] == 1  # a worker starting puts it on the queue
    run_queue()
    assert stored()[0].status is InboundStatus.PROCESSED
