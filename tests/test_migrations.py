"""Alembic migrations: they build the schema on an empty database, agree with the models, and go
down and up again. On SQLite, or on PostgreSQL when MAILER_TEST_DATABASE_URL names one (each test
then gets a database of its own, so the shared test database is never touched)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

import mailer.models  # noqa: F401  (every table on Base.metadata)
from mailer import create_app, migrate
from mailer.db import Base, engine
from mailer.search import is_search_object

# SQLite cannot reflect an index on an expression, so autogenerate always sees it as missing there.
SQLITE_UNREFLECTABLE = {"ix_members_email_lower"}
pytestmark = [
    pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index"),
    pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based index"),
]


@pytest.fixture
def empty_database_url(database_url, tmp_path):
    """A new, empty database on the same kind of server the tests use."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite'}"
        return
    name = f"{url.database}_migrations_{uuid.uuid4().hex[:8]}"
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def empty_app(empty_database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("MAILER_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app({"DATABASE_URL": empty_database_url, "SECRET_KEY": "test"})
    with app.app_context():
        yield app
        engine().dispose()


def schema_differences(connection) -> list:
    """What autogenerate would write for this database: empty when the models and it agree."""
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    differences = compare_metadata(context, Base.metadata)

    def expected(diff) -> bool:
        if not isinstance(diff, tuple):
            return False
        if diff[0] in {"remove_table", "remove_index"} and is_search_object(diff[1].name):
            return True  # the search indexes the migrations add beside the models (mailer.search)
        if connection.dialect.name != "sqlite":
            return False
        return diff[0] in {"add_index", "remove_index"} and diff[1].name in SQLITE_UNREFLECTABLE

    return [d for d in differences if not expected(d)]


def tables(connection) -> set[str]:
    return {name for name in inspect(connection).get_table_names() if not is_search_object(name)}


def revisions_base_to_head() -> list[str]:
    script = ScriptDirectory.from_config(migrate._config())
    return [r.revision for r in reversed(list(script.walk_revisions("base", "heads")))]


def test_one_head():
    """Two migrations written side by side must be merged before they ship."""
    assert len(ScriptDirectory.from_config(migrate._config()).get_heads()) == 1


@pytest.mark.slow
def test_mailer_db_upgrade_creates_the_schema(empty_database_url, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAILER_", "MAIL_"))}
    env.update(MAILER_DATABASE_URL=empty_database_url, MAILER_SECRET_KEY="test",
               MAILER_INSTANCE_PATH=str(tmp_path / "instance"))

    def mailer(*args: str) -> str:
        result = subprocess.run([sys.executable, "-m", "mailer", *args], env=env, cwd=tmp_path,
                                capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert mailer("db", "current").strip() == "(empty)"
    assert mailer("db", "upgrade").strip() == f"Database at revision {migrate.head()}."
    assert mailer("db", "current").strip() == f"{migrate.head()} (head)"
    db = create_engine(empty_database_url)
    try:
        with db.connect() as conn:
            assert tables(conn) == set(Base.metadata.tables) | {"alembic_version"}
            assert schema_differences(conn) == []
    finally:
        db.dispose()


def test_models_and_migrations_agree(empty_app):
    assert not migrate.is_current()
    migrate.upgrade()
    assert migrate.is_current()
    with engine().connect() as conn:
        assert schema_differences(conn) == []


def test_the_shared_test_database_matches_the_models(database_url):
    db = create_engine(database_url)
    try:
        with db.connect() as conn:
            assert schema_differences(conn) == []
    finally:
        db.dispose()


def test_every_step_down_to_base_and_up_again(empty_app):
    revisions = revisions_base_to_head()
    assert revisions[-1] == migrate.head()

    for revision in revisions:  # one migration at a time, as a long-lived database met them
        migrate.upgrade(revision)
        assert migrate.current() == revision
    for revision in reversed(revisions[:-1]):
        migrate.downgrade(revision)
        assert migrate.current() == revision
    migrate.downgrade("base")
    assert migrate.current() is None
    with engine().connect() as conn:
        assert tables(conn) <= {"alembic_version"}  # every table the migrations made is gone

    migrate.upgrade()
    assert migrate.is_current()
    with engine().connect() as conn:
        assert schema_differences(conn) == []
    # And the schema holds data: an officer with an audited creation.
    from mailer.db import session
    from mailer.models import AuditEvent, Role
    from mailer.officers.service import create_officer

    create_officer("again@example.org", Role.CLP_SECRETARY, password="long-enough-password")
    session.commit()
    assert session.query(AuditEvent).filter_by(action="officer.create").count() == 1


REBUILD_OFFICERS = '''"""rebuild officers, as SQLite alters a table

Revision ID: zz_rebuild
Revises: {head}
"""
from alembic import op

revision = "zz_rebuild"
down_revision = "{head}"
branch_labels = None
depends_on = None


def _recreate():
    # What SQLite does for most changes; PostgreSQL alters the table where it is.
    return "always" if op.get_bind().dialect.name == "sqlite" else "auto"


def upgrade() -> None:
    with op.batch_alter_table("officers", recreate=_recreate()) as batch_op:
        batch_op.create_index("ix_officers_name", ["name"])


def downgrade() -> None:
    with op.batch_alter_table("officers", recreate=_recreate()) as batch_op:
        batch_op.drop_index("ix_officers_name")
'''


def test_a_migration_that_rebuilds_a_table_keeps_the_rows_referring_to_it(empty_app, tmp_path, monkeypatch):
    """SQLite alters a table by copying it and dropping the old one; with foreign keys enforced,
    that drop would first delete every row, and ON DELETE rules would empty the references to it
    (here: the audit log would lose who did what)."""
    import shutil

    from mailer.db import session
    from mailer.models import AuditEvent, Role
    from mailer.officers.service import create_officer, set_password

    package = tmp_path / "package"
    shutil.copytree(migrate.PACKAGE_DIR / "migrations", package / "migrations",
                    ignore=shutil.ignore_patterns("__pycache__"))
    head = migrate.head()
    (package / "migrations" / "versions" / "zz_rebuild.py").write_text(REBUILD_OFFICERS.format(head=head))

    migrate.upgrade()
    officer, _ = create_officer("kept@example.org", Role.CLP_SECRETARY, password="long-enough-password")
    session.flush()
    set_password(officer, "another-long-password")  # audited as done by the officer
    session.commit()
    officer_id = officer.id
    session.close()

    monkeypatch.setattr(migrate, "PACKAGE_DIR", package)
    migrate.upgrade()
    assert migrate.current() == "zz_rebuild"
    [event] = session.query(AuditEvent).filter_by(action="officer.password").all()
    assert event.officer_id == officer_id
    migrate.downgrade(head)
    session.expire_all()
    assert session.query(AuditEvent).filter_by(officer_id=officer_id).count() == 1
    if engine().dialect.name == "sqlite":
        with engine().connect() as conn:  # foreign keys are enforced again afterwards
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
