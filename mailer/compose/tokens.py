"""Signed tokens in outgoing mail.

- Unsubscribe and preference links carry the member's random public id and the campaign id,
  signed: unguessable, and no member id is revealed.
- Reply and bounce addresses carry the delivery id with a short HMAC, so they fit in the local
  part of a plus-address (secretary+r-1k3-9f2c4a7d1e@example.org, under 64 characters).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from itsdangerous.encoding import want_bytes

from mailer.db import session
from mailer.models import Member


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="mailer.preferences")


def preferences_token(member: Member, campaign_id: int | None) -> str:
    """The token in a member's unsubscribe and preference links."""
    return _serializer().dumps([member.public_id, campaign_id])


class PreferencesTokens:
    """`preferences_token` for many members of one campaign: the signer's key is derived once and
    its HMAC state copied per member. The same tokens, to the character, whenever compressing the
    payload would not shorten it (random public ids never compress, so always in practice);
    where it would have, the token is the uncompressed form, which `read_preferences_token`
    reads all the same."""

    def __init__(self, campaign_id: int | None):
        serializer = _serializer()
        signer = serializer.make_signer()
        self.campaign_id = campaign_id
        self.dumps = serializer.serializer.dumps
        self.sep = want_bytes(signer.sep)
        self.mac = hmac.new(signer.derive_key(), digestmod=signer.digest_method)

    def __call__(self, member: Member) -> str:
        payload = base64.urlsafe_b64encode(
            want_bytes(self.dumps([member.public_id, self.campaign_id]))).rstrip(b"=")
        mac = self.mac.copy()
        mac.update(payload)
        return (payload + self.sep + base64.urlsafe_b64encode(mac.digest()).rstrip(b"=")).decode()


def read_preferences_token(token: str) -> tuple[Member, int | None] | None:
    """(member, campaign id) for a valid token, else None."""
    try:
        public_id, campaign_id = _serializer().loads(token)
    except (BadSignature, ValueError, TypeError):
        return None
    member = session.query(Member).filter_by(public_id=str(public_id)).one_or_none()
    return (member, campaign_id) if member is not None else None


def _b36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def _mac(kind: str, value: str) -> str:
    digest = hmac.new(current_app.config["SECRET_KEY"].encode(), f"{kind}:{value}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest[:10]).decode().lower()  # 16 characters, 80 bits


def address_token(kind: str, delivery_id: int) -> str:
    """"r-<id>-<mac>" (reply), "b-<id>-<mac>" (bounce) or "u-<id>-<mac>" (unsubscribe by mail) for a delivery."""
    ident = _b36(delivery_id)
    return f"{kind}-{ident}-{_mac(kind, ident)}"


def read_address_token(token: str) -> tuple[str, int] | None:
    """(kind, delivery id) for a valid reply or bounce token, else None."""
    try:
        kind, ident, mac = token.lower().split("-")
        delivery_id = int(ident, 36)
    except ValueError:
        return None
    if kind not in ("r", "b", "u") or not hmac.compare_digest(mac, _mac(kind, ident)):
        return None
    return kind, delivery_id


def plus_address(address: str, token: str) -> str:
    """secretary@example.org + token -> secretary+token@example.org"""
    local, _, domain = address.partition("@")
    return f"{local.split('+')[0]}+{token}@{domain}"
