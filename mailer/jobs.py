"""RQ job functions. Each takes ids, runs in a fresh app context, and is safe to run twice."""

from __future__ import annotations

from functools import wraps

from flask import current_app, has_app_context

from mailer.db import session
from mailer.models import Officer


def _app():
    if has_app_context():
        return current_app._get_current_object()
    from mailer import create_app

    return create_app()


def job(fn):
    """Run `fn` inside its own app context (its own database session)."""

    @wraps(fn)
    def wrapped(*args, **kwargs):
        with _app().app_context():
            return fn(*args, **kwargs)

    return wrapped


@job
def send_password_reset(officer_id: int) -> str:
    """Email an officer a signed, expiring link to set a new password."""
    from mailer.officers import service

    officer = session.get(Officer, officer_id)
    if officer is None or not officer.active:
        return "skipped"
    service.send_reset_email(officer)
    return "sent"
