"""The plain-words diagnosis of mail failures, against real servers: an aiosmtpd relay that refuses
the password, one that speaks no TLS, a closed port and a name that does not resolve. Each failure
goes through the path test sends and password resets use (mailer.mail.send_message)."""

from __future__ import annotations

import smtplib
from contextlib import contextmanager

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from mailer import operations
from mailer.mail import NotSent, RelayUnavailable
from tests.conftest import free_port


class _Keep:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"


@contextmanager
def _relay(handler=None, **options):
    """A real SMTP server on a free port of this machine, for the length of the block."""
    controller = Controller(handler or _Keep(), hostname="127.0.0.1", port=free_port(), **options)
    controller.start()
    try:
        yield controller.port
    finally:
        controller.stop()


@pytest.fixture
def refusing_relay():
    """A real SMTP server offering AUTH (over plain SMTP, for the test) that refuses every password."""
    with _relay(auth_require_tls=False, authenticator=lambda *args: AuthResult(success=False, handled=False)) as port:
        yield port


@pytest.fixture
def plain_relay():
    """A real SMTP server without TLS: no STARTTLS, and not TLS from the first byte either."""
    with _relay() as port:
        yield port


class _RefuseRecipients(_Keep):
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        return "550 5.7.1 relaying denied for this sender"


@pytest.fixture
def recipient_refusing_relay():
    """A real SMTP server that takes the connection but refuses every recipient."""
    with _relay(_RefuseRecipients()) as port:
        yield port


def _failure(make_app, **settings) -> operations.Diagnosis:
    app = make_app(**{"SMTP_TIMEOUT": 5, **settings})
    with app.app_context():
        with pytest.raises(Exception) as caught:
            operations.send_test("secretary@example.org")
        return operations.diagnose(caught.value, "SMTP")


def test_the_test_send_keeps_the_relays_exception_as_its_cause(make_app, refusing_relay):
    """The test send goes through the transport's one `send_now`; what the relay raised is kept as
    the NotSent's cause (and raised from), for the diagnosis to read."""
    app = make_app(SMTP_TIMEOUT=5, MAIL_PORT=refusing_relay, MAIL_USERNAME="secretary", MAIL_PASSWORD="wrong")
    with app.app_context():
        with pytest.raises(NotSent) as caught:
            operations.send_test("secretary@example.org")
    assert isinstance(caught.value.cause, RelayUnavailable) and caught.value.__cause__ is caught.value.cause
    assert isinstance(caught.value.cause.__cause__, smtplib.SMTPAuthenticationError)
    assert caught.value.result.cause is caught.value.cause


def test_a_refused_recipient_is_a_rejected_message(make_app, recipient_refusing_relay):
    found = _failure(make_app, MAIL_PORT=recipient_refusing_relay)
    assert found.kind == "rejected" and "refused the message: 550" in found.sentence


def test_a_wrong_password_is_named_as_such(make_app, refusing_relay):
    found = _failure(make_app, MAIL_PORT=refusing_relay, MAIL_USERNAME="secretary", MAIL_PASSWORD="wrong")
    assert found.kind == "auth"
    assert "refused the user name or password (535)" in found.sentence and "MAIL_PASSWORD" in found.sentence


def test_ssl_to_a_plain_port_is_a_tls_mismatch(make_app, plain_relay):
    found = _failure(make_app, MAIL_PORT=plain_relay, MAIL_USE_SSL=True)
    assert found.kind == "tls" and "did not answer in TLS" in found.sentence and "465" in found.sentence


def test_starttls_to_a_relay_without_it_is_a_tls_mismatch(make_app, plain_relay):
    found = _failure(make_app, MAIL_PORT=plain_relay, MAIL_USE_TLS=True)
    assert found.kind == "tls" and "does not offer STARTTLS" in found.sentence


def test_a_closed_port_is_a_refused_connection(make_app):
    found = _failure(make_app, MAIL_PORT=free_port())
    assert found.kind == "refused" and "nothing is listening on that port" in found.sentence


def test_an_unknown_host_is_named(make_app):
    found = _failure(make_app, MAIL_SERVER="no-such-relay.invalid", MAIL_PORT=587)
    assert found.kind == "host" and "MAIL_SERVER" in found.sentence and "could not be found" in found.sentence


def test_a_silent_server_is_a_timeout(make_app):
    import socket

    with socket.socket() as listener:  # accepts, never greets: what SSL-expecting ports look like to plain SMTP
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        found = _failure(make_app, MAIL_PORT=listener.getsockname()[1], SMTP_TIMEOUT=1)
    assert found.kind == "timeout" and "did not answer in time" in found.sentence


def test_the_diagnosis_follows_the_cause_and_speaks_of_the_mailbox_for_imap():
    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except OSError as exc:
            raise RuntimeError("cannot reach the IMAP server") from exc
    except RuntimeError as wrapped:
        found = operations.diagnose(wrapped, "IMAP")
    assert found.kind == "refused" and found.sentence.startswith("The mailbox server refused the connection")
