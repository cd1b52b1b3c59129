"""Schema migrations with Alembic, run on the app's own engine."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from mailer import PACKAGE_DIR
from mailer.db import engine


def _config(connection=None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(PACKAGE_DIR / "migrations"))
    cfg.attributes["connection"] = connection
    return cfg


@contextmanager
def _migrating() -> Iterator[Connection]:
    """A connection in one transaction to run migrations on.

    SQLite alters a table by copying it and dropping the old one. With foreign keys enforced, that
    DROP first deletes every row, firing the ON DELETE rules of the tables that refer to it (the
    audit log would lose who did what; cascades would delete rows). So on SQLite they are off while
    migrating (it only switches them outside a transaction) and checked before the commit.
    """
    with engine().connect() as conn, warnings.catch_warnings():
        # SQLite's table copies reflect the table first, and SQLAlchemy cannot reflect an index on
        # an expression (lower(email)); the migrations that copy such a table recreate it by hand.
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index")
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.commit()
        try:
            with conn.begin():
                yield conn
                if sqlite:
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(f"The migration left rows referring to rows that do not exist: {broken[:5]}")
        finally:
            if sqlite:
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")  # the pooled connection goes back as it came
                conn.commit()


def upgrade(revision: str = "head") -> None:
    """Bring the database up to `revision` (the newest by default)."""
    with _migrating() as conn:
        command.upgrade(_config(conn), revision)


def downgrade(revision: str) -> None:
    """Take the database back to `revision`."""
    with _migrating() as conn:
        command.downgrade(_config(conn), revision)


def revision(message: str, autogenerate: bool = True) -> None:
    """Write a new migration, comparing the models with the database when `autogenerate`."""
    with engine().begin() as conn:
        command.revision(_config(conn), message=message, autogenerate=autogenerate)


def current() -> str | None:
    """The revision the database is at (None for an empty database)."""
    with engine().connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head() -> str:
    return ScriptDirectory.from_config(_config()).get_current_head()


def is_current() -> bool:
    """True when the database is at the newest migration."""
    return current() == head()
