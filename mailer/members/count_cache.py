"""Segment counts remembered in Redis, so the composer does not count 100,000 members on every
keystroke or page view (a count of a large party takes a few hundred milliseconds on either
database: a pass over the members, and the distinct addresses among them).

A remembered count is used only while nothing it depends on has changed: every commit that
changed members, suppressions, tags, officers or meeting answers moves a generation number in
Redis, and the generation is part of the key. Writes that bypass the app's session (raw SQL by
hand) are covered by the time limit alone: a count is at most COUNT_TTL seconds old, and every
count says when it was made ("as_of"). A session with uncommitted changes of its own counts
afresh. Without Redis, every count is made afresh. The generation and the counts are kept per
database (keys named by the database's address), so two Mailers sharing a Redis server (or the
benchmark's SQLite and PostgreSQL apps) neither share counts nor make each other's stale.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime

from redis import exceptions as redis_errors
from sqlalchemy import event
from sqlalchemy.orm import Session

from mailer import scope
from mailer.db import session, utcnow

COUNT_TTL = 1800  # seconds: bounds staleness only from writes made outside the app
GENERATION_KEY = "mailer:members:generation"
WATCHED = frozenset({"members", "suppressions", "member_tags", "tags", "officers", "attendance", "branches"})
_FLAG = "mailer.members_changed"
log = logging.getLogger("mailer")


def _database() -> str:
    """A short name for the database the app's session writes to (its URL, password hidden, hashed)."""
    return _database_of(session)


def _generation_key() -> str:
    return f"{GENERATION_KEY}:{_database()}"


def _redis():
    from mailer import queue

    try:
        return queue.redis_connection()
    except (queue.NoRedisConfigured, RuntimeError):  # none configured, or no app
        return None


def counted(definition: dict, stream, officer, count) -> dict:
    """`count(definition, stream, officer)`, remembered: its numbers plus "as_of" (ISO, UTC)."""
    reach = "all" if scope.sees_all(officer) else f"branch:{scope.own_branch_id(officer)}"
    return remembered("segment-count", [definition, stream.value, reach],
                      lambda: count(definition, stream, officer))


def remembered(kind: str, parts: list, compute) -> dict:
    """`compute()` (a dict of numbers that depend only on members, suppressions, tags, officers and
    meeting answers, and on `parts`), remembered under the current generation: plus "as_of"."""
    pending = any(_table_of(o) in WATCHED for o in (*session.new, *session.dirty, *session.deleted))
    conn = None if session.info.get(_FLAG) or pending else _redis()  # our own changes: count afresh
    key = None
    if conn is not None:
        try:
            generation = (conn.get(_generation_key()) or b"0").decode()
            raw = json.dumps([*parts, generation, _database()], sort_keys=True, default=str)
            key = f"mailer:{kind}:" + hashlib.sha256(raw.encode()).hexdigest()
            hit = conn.get(key)
            if hit is not None:
                return json.loads(hit)
        except redis_errors.RedisError:
            conn = None
    numbers = compute() | {"as_of": utcnow().isoformat()}
    if conn is not None and key is not None:
        try:
            conn.set(key, json.dumps(numbers), ex=COUNT_TTL)
        except redis_errors.RedisError:
            pass
    return numbers


def as_of(numbers: dict) -> datetime | None:
    value = numbers.get("as_of")
    return datetime.fromisoformat(value) if value else None


def _table_of(obj) -> str | None:
    table = getattr(obj, "__table__", None)
    return getattr(table, "name", None)


@event.listens_for(Session, "after_flush")
def _flushed(sess, _context) -> None:
    if not sess.info.get(_FLAG) and any(_table_of(o) in WATCHED for o in (*sess.new, *sess.dirty, *sess.deleted)):
        sess.info[_FLAG] = True


@event.listens_for(Session, "do_orm_execute")
def _executed(state) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        table = getattr(state.statement, "table", None)
        if getattr(table, "name", None) in WATCHED:
            state.session.info[_FLAG] = True


@event.listens_for(Session, "after_commit")
def _committed(sess) -> None:
    if sess.info.pop(_FLAG, False):
        conn = _redis()
        if conn is not None:
            try:
                conn.incr(f"{GENERATION_KEY}:{_database_of(sess)}")
            except redis_errors.RedisError:
                log.warning("could not mark segment counts stale; they expire within %s s", COUNT_TTL)


def _database_of(sess) -> str:
    url = sess.get_bind().url.render_as_string(hide_password=True)
    return hashlib.sha256(url.encode()).hexdigest()[:16]


@event.listens_for(Session, "after_rollback")
def _rolled_back(sess) -> None:
    sess.info.pop(_FLAG, None)
