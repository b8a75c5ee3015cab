"""Alembic environment: runs migrations over the connection handed in by ``storage.db``."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached through `alembic` CLI misuse
    raise RuntimeError("run migrations through keyguard.storage.db.migrate()")

context.configure(
    connection=connection,
    target_metadata=context.config.attributes.get("target_metadata"),
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
