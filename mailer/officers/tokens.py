"""Personal API tokens: made and revoked by the officer on their own page, shown once, kept hashed.

A token is 256 random bits, so a plain SHA-256 of it is enough to store (there is nothing to
guess, unlike a password). It carries the officer's own role and branch scope and ends when it
is revoked, when it expires, or when the officer is disabled.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select

from mailer import audit
from mailer.db import session, utcnow
from mailer.errors import Refusal
from mailer.models import ApiToken, Officer

PREFIX = "mlr_"
MAX_TOKENS = 20  # live tokens per officer
MAX_DAYS = 366


class TokenError(Refusal):
    """A token request that cannot be carried out; the message says why."""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def live_tokens(officer: Officer) -> list[ApiToken]:
    """The officer's tokens that still work, newest first."""
    now = utcnow()
    return [t for t in session.scalars(select(ApiToken).where(ApiToken.officer_id == officer.id,
                                                              ApiToken.revoked_at.is_(None))
                                       .order_by(ApiToken.created_at.desc(), ApiToken.id.desc()))
            if t.expires_at is None or t.expires_at > now]


def create(officer: Officer, name: str, days: int | None = None) -> tuple[ApiToken, str]:
    """A new token for `officer`; returns it with the token text, which is never shown again.
    `days`: how long it works (None: until revoked). Not committed."""
    name = " ".join((name or "").split())
    if not name:
        raise TokenError("Give the token a name that says where it is used.")
    if len(name) > 100:
        raise TokenError("The name is longer than 100 characters.")
    if days is not None and not 1 <= days <= MAX_DAYS:  # None: until revoked
        raise TokenError(f"A token can last from 1 to {MAX_DAYS} days.")
    if len(live_tokens(officer)) >= MAX_TOKENS:
        raise TokenError(f"You already have {MAX_TOKENS} tokens: revoke one you no longer use first.")
    text = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(officer_id=officer.id, name=name, token_hash=_digest(text), hint=text[:10],
                     expires_at=utcnow() + timedelta(days=days) if days is not None else None)
    session.add(token)
    session.flush()
    audit.record("api_token.create", "officer", officer.id, note=name, officer=officer)
    return token, text


def own_token(officer: Officer, token_id: int) -> ApiToken | None:
    """One of the officer's own tokens that has not been revoked (None for anyone else's)."""
    token = session.get(ApiToken, token_id)
    if token is None or token.officer_id != officer.id or token.revoked_at is not None:
        return None
    return token


def revoke(officer: Officer, token_id: int) -> ApiToken:
    """Stop one of the officer's own tokens working. Not committed."""
    token = own_token(officer, token_id)
    if token is None:
        raise TokenError("There is no such token of yours to revoke.")
    token.revoked_at = utcnow()
    audit.record("api_token.revoke", "officer", officer.id, note=token.name, officer=officer)
    return token


def authenticate(text: str) -> Officer | None:
    """The active officer a presented token belongs to, or None. Records when it was last used
    (to the minute, so a busy client does not write on every request). Not committed."""
    if not text.startswith(PREFIX) or len(text) > 100:
        return None
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(text)))
    now = utcnow()
    if (token is None or token.revoked_at is not None or (token.expires_at is not None and token.expires_at <= now)
            or not token.officer.active):
        return None
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        token.last_used_at = now
    return token.officer
