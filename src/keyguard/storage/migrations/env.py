"""Alembic environment: runs migrations over the connection handed in by ``storage.db``."""

from __future__ import annotations

from alembic import context

from keyguard.storage.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached through `alembic` CLI misuse
    raise RuntimeError("run migrations through keyguard.storage.db.migrate()")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
