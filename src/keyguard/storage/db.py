"""Database engine, sessions and start-up migrations (SQLite embedded, PostgreSQL at scale)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, event, make_url, text
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

MIGRATIONS = Path(__file__).parent / "migrations"


def create_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


def create_reader(url: str) -> Engine | None:
    """A plain engine on the same SQLite file, for a read run whole in a worker thread:
    one thread hop, where aiosqlite makes one per call (cursor, execute, fetch, close,
    rollback), which is most of a key-cache miss. None for PostgreSQL (asyncpg makes no
    hops) and for a database in memory (another connection would see another one)."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    reader = sa_create_engine(
        parsed.set(drivername="sqlite"), connect_args={"timeout": 30, "check_same_thread": False}
    )
    event.listen(reader, "connect", _sqlite_pragmas)
    return reader


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets readers run beside the single writer; FKs are off by default in SQLite.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def session_factory(
    engine: AsyncEngine, info: dict[str, Any] | None = None
) -> async_sessionmaker[AsyncSession]:
    """``info`` is copied into every session's ``session.info`` (e.g. the audit chain key)."""
    return async_sessionmaker(engine, expire_on_commit=False, info=info or {})


def alembic_config(
    connection: Connection | None = None, *, metadata: MetaData | None = None
) -> Config:
    """``metadata`` (``keyguard.tables.metadata``) only matters to autogenerate/compare."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    cfg.attributes["target_metadata"] = metadata
    return cfg


@functools.cache
def head_revision() -> str:
    """The newest migration this version of Keyguard ships (read from the scripts once)."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise RuntimeError("no migrations found")
    return head


async def schema_is_current(engine: AsyncEngine) -> bool:
    """Whether the database answers and is migrated to :func:`head_revision`."""
    async with engine.connect() as conn:
        found = await conn.execute(text("SELECT version_num FROM alembic_version"))
        return set(found.scalars()) == {head_revision()}


def _upgrade(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")


async def migrate(engine: AsyncEngine) -> None:
    """Apply every pending migration (run on each start; a no-op when up to date)."""
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)
