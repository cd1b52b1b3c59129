"""Optional DKIM signing: with a key configured, every message verifies against its public key."""

from __future__ import annotations

import base64

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mailer.sending.message import CampaignMessages


def make_dkim_keys() -> tuple[str, bytes]:
    """A throwaway RSA key: (the private key as PEM, the public key as a DNS record's p= value)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, base64.b64encode(public)


def test_messages_are_dkim_signed_and_verify(app, make_campaign, make_member):
    private, public = make_dkim_keys()
    app.config.update(DKIM_PRIVATE_KEY=private, DKIM_SELECTOR="mail2026", DKIM_DOMAIN="anytown-labour.example")
    member = make_member(first_name="Dora", email="dora@example.org")
    envelope = CampaignMessages(make_campaign()).build(member, 1)
    assert envelope.data.startswith(b"DKIM-Signature:")
    assert b"d=anytown-labour.example" in envelope.data and b"s=mail2026" in envelope.data

    def dns(name, timeout=5):
        assert name == b"mail2026._domainkey.anytown-labour.example."
        return b"v=DKIM1; k=rsa; p=" + public

    assert dkim.verify(envelope.data, dnsfunc=dns)
    tampered = envelope.data.replace(b"Dear Dora", b"Dear Mora")
    assert not dkim.verify(tampered, dnsfunc=dns)


def test_no_key_no_signature(app, make_campaign, make_member):
    envelope = CampaignMessages(make_campaign()).build(make_member(), 1)
    assert b"DKIM-Signature" not in envelope.data
