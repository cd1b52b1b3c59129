"""Database: one engine per app, one session per request or job, the declarative Base.

`session` is a proxy to the current request's (or job's) session; it is closed at teardown,
rolling back anything left uncommitted.

Who commits: services never do. A web or API request commits once, after its view, when it
succeeded (`_commit_request`); a job or a CLI command commits itself. Work a service needs
queued is recorded with `mailer.work.after_commit` and handed to the queue only once that commit
succeeds.
"""

from __future__ import annotations

import os
import re
import weakref
from datetime import datetime, timezone

from flask import Flask, current_app, g
from sqlalchemy import DateTime, MetaData, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator
from werkzeug.local import LocalProxy

# Named constraints so Alembic migrations stay portable between SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on every backend (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(timezone.utc) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


def utcnow() -> datetime:
    """Now, as an aware UTC datetime."""
    return datetime.now(timezone.utc)


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(value: str | None) -> str:
    """Text as every database column takes it: PostgreSQL refuses NUL characters, and no UTF-8
    column holds a lone surrogate (what undecodable bytes in a header become): each becomes U+FFFD.
    For any text that came from outside, before it is stored."""
    return _UNSTORABLE.sub("\ufffd", value) if value else (value or "")


def make_engine(url: str) -> Engine:
    """An engine for `url`, with SQLite made fit for a web process and workers side by side."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")  # readers do not block the worker's writes
            cur.execute("PRAGMA synchronous=NORMAL")  # in WAL: no corruption risk, far fewer fsyncs
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()
            # SQLite's own lower() knows only ASCII: "SIÂN" would never find "Siân".
            dbapi_conn.create_function("lower", 1, _unicode_lower, deterministic=True)

        return engine
    # PostgreSQL's JIT compiles any query it guesses costly (a count over a million deliveries):
    # 100-250 ms of compiling for queries that run in tens. Off, as for most OLTP workloads.
    return create_engine(url, pool_pre_ping=True, connect_args={"options": "-c jit=off"})


def _unicode_lower(value):
    return value.lower() if isinstance(value, str) else value


def init_app(app: Flask) -> None:
    """Create the app's engine and session factory and close sessions at teardown."""
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["mailer.db"] = sessionmaker(bind=engine, expire_on_commit=False)
    # RQ forks a child per job: the child must not reuse the parent's pooled connections.
    # (A weak reference, so apps made and dropped in tests do not pile up engines.)
    ref = weakref.ref(engine)
    os.register_at_fork(after_in_child=lambda: (e := ref()) is not None and e.dispose(close=False))
    app.after_request(_commit_request)
    app.teardown_appcontext(_close_session)


def engine() -> Engine:
    """The current app's engine."""
    return current_app.extensions["mailer.db"].kw["bind"]


def get_session() -> Session:
    """The session of the current app context, opened on first use."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["mailer.db"]()
    return g.db_session


def _commit_request(response):
    """The request's one commit: when the answer is a success (or one of the answers the request
    marked as keeping its changes in `g.commit_on`: the API keeps a token's last use on a
    refusal), else a rollback. A view never commits itself."""
    s = g.get("db_session")
    if s is not None and s.in_transaction():  # nothing begun (or already rolled back): nothing to do
        if response.status_code < 400 or response.status_code in g.get("commit_on", ()):
            s.commit()
        else:
            s.rollback()
    return response


def _close_session(_exc: BaseException | None) -> None:
    s = g.pop("db_session", None)
    if s is not None:
        s.close()


session: Session = LocalProxy(get_session)  # type: ignore[assignment]
