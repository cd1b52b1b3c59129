"""Optional DKIM signing: with a key configured, every message verifies against its public key."""

from __future__ import annotations

import base64

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mailer.compose.message import CampaignMessages


def make_dkim_keys() -> tuple[str, bytes]:
    """A throwaway RSA key: (the private key as PEM, the public key as a DNS record's p= value)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, base64.b64encode(public)


def test_messages_are_dkim_signed_and_verify(app, make_campaign, make_member):
    """The transport signs the final bytes: what it hands on verifies, and a changed body does not."""
    from mailer.mail import outbox, transport

    private, public = make_dkim_keys()
    app.config.update(DKIM_PRIVATE_KEY=private, DKIM_SELECTOR="mail2026", DKIM_DOMAIN="anytown-labour.example",
                      MAIL_TRANSPORT="memory")
    member = make_member(first_name="Dora", email="dora@example.org")
    envelope = CampaignMessages(make_campaign()).build(member, 1)
    assert b"DKIM-Signature" not in envelope.data  # built unsigned: signing is the transport's
    with transport().connect() as conn:
        assert conn.send(envelope.sender, [envelope.recipient], envelope.data)[envelope.recipient].accepted
    [sent] = outbox()
    assert sent.data.startswith(b"DKIM-Signature:") and sent.data.endswith(envelope.data)
    assert b"d=anytown-labour.example" in sent.data and b"s=mail2026" in sent.data

    def dns(name, timeout=5):
        assert name == b"mail2026._domainkey.anytown-labour.example."
        return b"v=DKIM1; k=rsa; p=" + public

    assert dkim.verify(sent.data, dnsfunc=dns)
    tampered = sent.data.replace(b"Dear Dora", b"Dear Mora")
    assert not dkim.verify(tampered, dnsfunc=dns)


def test_no_key_no_signature(app, make_campaign, make_member):
    from mailer.mail import outbox, transport

    app.config["MAIL_TRANSPORT"] = "memory"
    envelope = CampaignMessages(make_campaign()).build(make_member(), 1)
    transport().send(envelope.sender, [envelope.recipient], envelope.data)
    assert outbox()[0].data == envelope.data and b"DKIM-Signature" not in envelope.data


def test_service_messages_are_signed_too(app, make_officer):
    """A password reset leaves by the same transport as campaigns and replies, over real SMTP:
    with a key, the bytes on the wire verify."""
    import threading

    from aiosmtpd.controller import Controller

    from mailer.officers import service
    from tests.conftest import free_port

    received: list[bytes] = []
    lock = threading.Lock()

    class Raw:
        async def handle_DATA(self, server, session, envelope):
            with lock:
                received.append(envelope.original_content)
            return "250 OK"

    controller = Controller(Raw(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        private, public = make_dkim_keys()
        app.config.update(DKIM_PRIVATE_KEY=private, DKIM_SELECTOR="mail2026", DKIM_DOMAIN="anytown-labour.example",
                          MAIL_PORT=controller.port)
        service.send_reset_email(make_officer())
    finally:
        controller.stop()
    [data] = received
    assert data.startswith(b"DKIM-Signature:")

    def dns(name, timeout=5):
        assert name == b"mail2026._domainkey.anytown-labour.example."
        return b"v=DKIM1; k=rsa; p=" + public

    assert dkim.verify(data, dnsfunc=dns)
    assert not dkim.verify(data.replace(b"/reset/", b"/reset-x/"), dnsfunc=dns)
