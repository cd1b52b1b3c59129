"""Each body's calendar feed: a signed address officers share, listing upcoming meetings."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select

from mailer.db import session, utcnow
from mailer.links import external_url
from mailer.models import Branch, Meeting


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="mailer.calendar-feed")


def feed_token(branch: Branch | None) -> str:
    return _serializer().dumps(branch.id if branch else 0)


def feed_url(branch: Branch | None) -> str:
    return external_url("public.calendar_feed", token=feed_token(branch))


def read_feed_token(token: str) -> tuple[Branch | None, str] | None:
    """(branch or None for the CLP, the calendar's name) for a valid token."""
    try:
        branch_id = int(_serializer().loads(token))
    except (BadSignature, ValueError, TypeError):
        return None
    org = current_app.config["ORG_NAME"]
    if branch_id == 0:
        return None, f"{org} meetings"
    branch = session.get(Branch, branch_id)
    return (branch, f"{org}: {branch.name} branch meetings") if branch else None


def upcoming(branch_id: int | None) -> list[Meeting]:
    """The body's meetings from a week ago on (cancelled ones stay, marked cancelled)."""
    stmt = select(Meeting).where(Meeting.starts_at >= utcnow() - timedelta(days=7)).order_by(Meeting.starts_at)
    stmt = stmt.where(Meeting.branch_id.is_(None) if branch_id is None else Meeting.branch_id == branch_id)
    return list(session.scalars(stmt))
