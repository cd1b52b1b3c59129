"""Alembic's environment: runs on the connection `mailer.migrate` hands it."""

from alembic import context

from mailer.db import Base
import mailer.models  # noqa: F401  (registers every table on Base.metadata)

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
