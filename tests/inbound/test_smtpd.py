"""The SMTP/LMTP receiver, talked to by real clients (smtplib, and a raw socket where smtplib's
LMTP cannot read one reply per recipient), with the server running in its own thread as
production runs it; and `mailer inbound smtpd` as a real process."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import subprocess
import sys
import time

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from mailer.db import session
from mailer.inbound import smtpd
from mailer.inbound import store as store_module
from mailer.models import InboundKind, InboundMessage, InboundStatus
from mailer.compose.tokens import address_token, plus_address
from tests.conftest import free_port
from tests.inbound.conftest import raw_message
from tests.sending.conftest import ScriptedSMTP, _Handler, run_queue


@pytest.fixture
def scripted_smtp():
    """The relay the `sent` campaign goes out through (one kind is enough here)."""
    smtp = ScriptedSMTP()
    controller = Controller(_Handler(smtp), hostname="127.0.0.1", port=free_port())
    controller.start()
    smtp.port = controller.port
    yield smtp
    controller.stop()


@pytest.fixture
def receiver(app):
    """Start a receiver (SMTP, or LMTP with lmtp=True) for `app` on a free port; stopped at the end."""
    started = []

    def factory(lmtp: bool = False, target=None):
        controller = smtpd.make_controller(target or app, "127.0.0.1", free_port(), lmtp)
        controller.start()
        started.append(controller)
        return controller

    yield factory
    for controller in started:
        controller.stop()


def stored() -> list[InboundMessage]:
    session.expire_all()
    return list(session.scalars(select(InboundMessage).order_by(InboundMessage.id)))


def test_smtp_stores_each_message_before_answering_250(receiver):
    server = receiver()
    raw = raw_message(subject="Apologies", message_id="<smtp1@mail.example.net>").replace(b"\n", b"\r\n")
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
        client.ehlo("mx.example.net")
        assert client.mail("ann@example.org")[0] == 250
        assert client.rcpt("secretary@anytown-labour.example")[0] == 250
        code, reply = client.data(raw)
        # The answer comes after the commit: the row is there the moment 250 is read.
        (message,) = stored()
        assert code == 250 and reply.decode() == f"2.0.0 Stored as inbound message {message.id}"
    assert message.transport == "smtp" and message.message_id == "<smtp1@mail.example.net>"
    assert message.raw.startswith(b"Return-Path: <ann@example.org>\r\n"
                                  b"X-Original-To: secretary@anytown-labour.example\r\n")
    assert message.raw.endswith(raw)  # the message itself, byte for byte

    run_queue()
    assert stored()[0].status is InboundStatus.PROCESSED and stored()[0].subject == "Apologies"


def test_the_same_message_again_is_accepted_and_not_stored_twice(receiver):
    server = receiver()
    raw = raw_message(message_id="<again@mail.example.net>")
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
        assert client.sendmail("ann@example.org", ["secretary@anytown-labour.example"], raw) == {}
        client.mail("ann@example.org")
        client.rcpt("secretary@anytown-labour.example")
        code, reply = client.data(raw)
    assert code == 250 and b"Already held" in reply and len(stored()) == 1


def test_a_failure_to_store_answers_451_so_the_sender_keeps_the_message(receiver, monkeypatch):
    server = receiver()
    raw = raw_message(message_id="<retry@mail.example.net>")

    def database_away(*args, **kwargs):
        raise RuntimeError("database away")

    monkeypatch.setattr(store_module, "store", database_away)
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail("ann@example.org", ["secretary@anytown-labour.example"], raw)
    assert refused.value.smtp_code == 451 and stored() == []

    monkeypatch.undo()  # the database is back: the sender's retry gets through
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
        assert client.sendmail("ann@example.org", ["secretary@anytown-labour.example"], raw) == {}
    assert [m.message_id for m in stored()] == ["<retry@mail.example.net>"]


def test_a_reply_token_only_in_the_envelope_still_matches(receiver, sent):
    """Bcc'd, or forwarded by a rule: the To header has no token, the envelope recipient does."""
    _campaign, deliveries = sent
    d = deliveries["ann@example.org"]
    server = receiver()
    token_address = plus_address("secretary@anytown-labour.example", address_token("r", d.id))
    raw = raw_message(to="secretary@anytown-labour.example", subject="Re: News of the week")
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
        client.sendmail("ann@example.org", [token_address], raw)
    run_queue()
    (message,) = stored()
    assert (message.kind, message.match_method, message.delivery_id) == (InboundKind.REPLY, "token", d.id)


def test_a_bounce_keeps_its_null_sender(receiver):
    server = receiver()
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
        client.ehlo()
        assert client.mail("<>")[0] == 250
        client.rcpt("bounces@anytown-labour.example")
        assert client.data(raw_message(sender="MAILER-DAEMON@mx.example.net", subject="Undelivered Mail"))[0] == 250
    assert stored()[0].raw.startswith(b"Return-Path: <>\nX-Original-To: bounces@anytown-labour.example\nFrom: MAILER")


def big(letter: str) -> bytes:
    """Over 5,000 bytes, in lines a real MTA would send (CRLF, under 1,000 characters)."""
    return raw_message(body=(letter * 70 + "\n") * 80).replace(b"\n", b"\r\n")


def test_too_large_is_refused_with_552_and_nothing_stored(make_app, receiver):
    small = make_app(INBOUND_MAX_BYTES=2000)
    server = receiver(target=small)
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:  # over the SIZE it announced
            client.sendmail("ann@example.org", ["secretary@anytown-labour.example"], big("x"))
        assert refused.value.smtp_code == 552
        client.rset()
        client.mail("ann@example.org")  # no SIZE given: refused at the end of DATA instead
        client.rcpt("secretary@anytown-labour.example")
        assert client.data(big("y"))[0] == 552
    assert stored() == []


def test_lmtp_with_smtplib(receiver):
    server = receiver(lmtp=True)
    client = smtplib.LMTP("127.0.0.1", server.port)
    try:
        assert client.sendmail("ann@example.org", ["secretary@anytown-labour.example"],
                               raw_message(message_id="<lmtp@mail.example.net>")) == {}
    finally:
        client.quit()
    (message,) = stored()
    assert message.transport == "lmtp" and message.message_id == "<lmtp@mail.example.net>"


def _lmtp_conversation(port: int, lines: list[bytes], replies_after_data: int) -> list[bytes]:
    """Speak LMTP on a raw socket; returns every reply line read."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        reader = sock.makefile("rb")
        got = [reader.readline()]
        for line in lines:
            sock.sendall(line)
            if line.startswith(b"LHLO"):
                while True:
                    got.append(reader.readline())
                    if got[-1][3:4] == b" ":
                        break
            elif line.endswith(b"\r\n.\r\n"):
                got.extend(reader.readline() for _ in range(replies_after_data))
            else:
                got.append(reader.readline())
        return got


def test_lmtp_answers_data_once_per_recipient_and_stores_once(receiver):
    server = receiver(lmtp=True)
    body = raw_message(message_id="<two@mail.example.net>").replace(b"\n", b"\r\n")
    got = _lmtp_conversation(server.port, [
        b"LHLO mx.example.net\r\n", b"MAIL FROM:<ann@example.org>\r\n",
        b"RCPT TO:<secretary@anytown-labour.example>\r\n", b"RCPT TO:<chair@anytown-labour.example>\r\n",
        b"DATA\r\n", body + b".\r\n"], replies_after_data=2)
    (message,) = stored()
    assert got[-2:] == [f"250 2.0.0 Stored as inbound message {message.id}\r\n".encode()] * 2
    assert (b"X-Original-To: secretary@anytown-labour.example\r\n"
            b"X-Original-To: chair@anytown-labour.example\r\n") in message.raw

    refused = _lmtp_conversation(server.port, [b"EHLO mx.example.net\r\n"], 0)
    assert refused[-1].startswith(b"500")  # LMTP speaks LHLO only


def test_lmtp_failure_is_451_for_every_recipient(receiver, monkeypatch):
    server = receiver(lmtp=True)
    monkeypatch.setattr(store_module, "store", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("away")))
    got = _lmtp_conversation(server.port, [
        b"LHLO mx.example.net\r\n", b"MAIL FROM:<ann@example.org>\r\n",
        b"RCPT TO:<secretary@anytown-labour.example>\r\n", b"RCPT TO:<chair@anytown-labour.example>\r\n",
        b"DATA\r\n", raw_message().replace(b"\n", b"\r\n") + b".\r\n"], replies_after_data=2)
    assert [line[:3] for line in got[-2:]] == [b"451", b"451"] and stored() == []


# --- `mailer inbound smtpd`, a real process -------------------------------------------------

@pytest.mark.slow
def test_mailer_inbound_smtpd_receives_and_stops_on_sigterm(app, tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAILER_", "MAIL_"))}
    env.update(MAILER_DATABASE_URL=app.config["DATABASE_URL"], MAILER_REDIS_URL=app.config["REDIS_URL"],
               MAILER_SECRET_KEY=app.config["SECRET_KEY"], MAILER_QUEUE_NAME=app.config["QUEUE_NAME"],
               MAILER_INSTANCE_PATH=str(tmp_path / "instance"))
    log = tmp_path / "smtpd.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "mailer", "inbound", "smtpd", "--port", str(port), "--lmtp"],
                                env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while b"listening" not in log.read_bytes():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        client = smtplib.LMTP("127.0.0.1", port)
        client.sendmail("ann@example.org", ["secretary@anytown-labour.example"],
                        raw_message(message_id="<process@mail.example.net>"))
        client.quit()
        assert [m.message_id for m in stored()] == ["<process@mail.example.net>"]

        busy = subprocess.run([sys.executable, "-m", "mailer", "inbound", "smtpd", "--port", str(port)],
                              env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert busy.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in busy.stderr

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
