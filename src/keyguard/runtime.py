"""Composition root: builds every long-lived object once, from Settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from keyguard.clock import Clock, SystemClock
from keyguard.crypto.envelope import Envelope
from keyguard.crypto.hashing import SecretHasher, derive_subkey
from keyguard.crypto.master_key import decode_master_key, load_or_create_master_key
from keyguard.engine.cache import KeyCache
from keyguard.engine.records import KeyRecord
from keyguard.engine.verifier import PolicyEngine
from keyguard.services.key_records import load_key_record
from keyguard.settings import Settings
from keyguard.state.memory import memory_state
from keyguard.state.protocols import StateStores
from keyguard.storage.db import create_engine, migrate, session_factory


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    db: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    envelope: Envelope
    hasher: SecretHasher
    cache: KeyCache
    engine: PolicyEngine
    state: StateStores
    # SQLite allows one writer; serialising our own write transactions in-process avoids
    # SQLITE_BUSY on lock upgrades. PostgreSQL needs no such lock.
    _write_lock: anyio.Lock | None = None

    @classmethod
    async def start(cls, settings: Settings, *, clock: Clock | None = None) -> Runtime:
        clock = clock or SystemClock()
        url = settings.effective_database_url
        if settings.master_key is not None:
            master = decode_master_key(settings.master_key.get_secret_value())
        elif url.startswith("sqlite"):
            master = load_or_create_master_key(settings.data_dir)
        else:
            raise ValueError(
                "KEYGUARD_MASTER_KEY must be set when several instances share a database"
            )
        if url.startswith("sqlite"):
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = create_engine(url)
        await migrate(db)
        sessions = session_factory(db)
        envelope = Envelope(master)
        hasher = SecretHasher(derive_subkey(master, "keyguard/key-hash"))

        async def loader(key_id: str) -> KeyRecord | None:
            async with sessions() as session:
                return await load_key_record(session, envelope, key_id)

        cache = KeyCache(loader, clock, ttl=settings.key_cache_ttl_seconds)
        return cls(
            settings=settings,
            clock=clock,
            db=db,
            sessions=sessions,
            envelope=envelope,
            hasher=hasher,
            cache=cache,
            engine=PolicyEngine(cache, hasher, clock),
            state=memory_state(clock),
            _write_lock=anyio.Lock() if url.startswith("sqlite") else None,
        )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: commits on success, rolls back on any exception."""
        if self._write_lock is None:
            async with self.sessions.begin() as session:
                yield session
            return
        async with self._write_lock, self.sessions.begin() as session:
            yield session

    async def close(self) -> None:
        await self.db.dispose()
