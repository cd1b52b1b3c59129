"""Work to queue once the transaction that asked for it has committed (Indico's after-commit hook).

A service never enqueues: the worker could run the job before the rows it needs are committed,
and a rollback would leave a job for work that never happened. It records what it needs instead,

    work.after_commit("start_campaign", campaign.id, campaign.scheduled_at)

and when the session commits, an `after_commit` event hands the list to the job registry
(`mailer.jobs.hand_over`); a rollback discards it. Each entry is plain data (a job's name in the
registry and its arguments): the hand-over runs after the commit, where the session can no
longer read the database.
"""

from __future__ import annotations

import logging

from flask import Flask, current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session

from mailer.db import session

KEY = "mailer.after_commit"


def after_commit(kind: str, *args, **options) -> None:
    """Queue the registry's job `kind` with `args` once the current session commits."""
    session.info.setdefault(KEY, []).append((kind, args, options))


def pending(s: Session | None = None) -> list[tuple]:
    """What the current transaction will queue when it commits (for tests and logs)."""
    return list((s if s is not None else session).info.get(KEY, []))


def init_app(app: Flask) -> None:
    """Listen to the commits and rollbacks of the app's sessions."""
    factory = app.extensions["mailer.db"]
    event.listen(factory, "after_commit", _hand_over)
    event.listen(factory, "after_rollback", _discard)


def _hand_over(s: Session) -> None:
    work = s.info.pop(KEY, [])
    if not work:
        return
    if not has_app_context() or "mailer.jobs" not in current_app.extensions:
        logging.getLogger("mailer").warning("no job registry to queue %s; reconcile will", work)
        return
    current_app.extensions["mailer.jobs"](work)


def _discard(s: Session) -> None:
    s.info.pop(KEY, None)
