"""Schema migrations with Alembic, run on the app's own engine."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from mailer import PACKAGE_DIR
from mailer.db import engine


def _config(connection=None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(PACKAGE_DIR / "migrations"))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(revision: str = "head") -> None:
    """Bring the database up to `revision` (the newest by default)."""
    with engine().begin() as conn:
        command.upgrade(_config(conn), revision)


def downgrade(revision: str) -> None:
    """Take the database back to `revision`."""
    with engine().begin() as conn:
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
