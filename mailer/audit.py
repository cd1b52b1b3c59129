"""The audit log service: every change to personal data is recorded in the same transaction."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum

from flask import has_request_context
from flask_login import current_user
from sqlalchemy import select

from mailer.db import session
from mailer.models import AuditEvent, Officer
from mailer.pagination import Cursor, Key, KeysetPage, paginate

SYSTEM = "system"


def actor(officer: Officer | None) -> tuple[int | None, str]:
    """(officer id, actor text) as an audit event records who acted."""
    return _actor(officer)


def _actor(officer: Officer | None) -> tuple[int | None, str]:
    if officer is None and has_request_context() and current_user.is_authenticated:
        officer = current_user._get_current_object()
    if officer is not None:
        return officer.id, officer.email
    return None, SYSTEM


def plain(value: object) -> object:
    """A value as it is stored in the log (JSON-friendly)."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def record(action: str, subject_type: str, subject_id: int | None, changes: dict | None = None,
           note: str = "", officer: Officer | None = None, actor: str | None = None) -> AuditEvent:
    """Add one audit event to the current session (committed with the change it describes)."""
    officer_id, who = _actor(officer)
    event = AuditEvent(officer_id=officer_id, actor=actor or who, action=action, subject_type=subject_type,
                       subject_id=subject_id, changes=changes or {}, note=note)
    session.add(event)
    return event


def diff(before: dict, after: dict) -> dict:
    """{field: [old, new]} for every field whose value differs."""
    return {k: [plain(before.get(k)), plain(after[k])] for k in after if plain(before.get(k)) != plain(after[k])}


def events(action_prefix: str = "", cursor: Cursor | None = None, per_page: int = 50) -> KeysetPage:
    """One page of the log, newest first, optionally only actions starting with `action_prefix`."""
    stmt = select(AuditEvent)
    if action_prefix:
        stmt = stmt.where(AuditEvent.action.startswith(action_prefix, autoescape=True))
    return paginate(stmt, [Key(AuditEvent.id, descending=True)], cursor or Cursor(), per_page, count=False)
