"""Composition root: builds every long-lived object once, from Settings."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import anyio
from sqlalchemy import select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from keyguard.accounts.context import AccountKeys
from keyguard.accounts.principal import SessionPrincipals
from keyguard.audit.models import AuditEvent, AuditHead
from keyguard.audit.refusals import RefusalRecorder
from keyguard.audit.service import (
    AUDIT_KEY,
    AUDIT_SUBSCRIBERS,
    GENESIS,
    canonical,
    chain_hash,
)
from keyguard.clock import Clock, SystemClock
from keyguard.crypto.envelope import Envelope
from keyguard.crypto.hashing import SecretHasher, derive_subkey
from keyguard.crypto.keys import KeyIdTagger
from keyguard.crypto.master_key import (
    decode_master_key,
    decode_master_keys,
    load_or_create_master_key,
    previous_master_keys,
)
from keyguard.engine.cache import KeyCache, ReadThroughCache
from keyguard.engine.ipallow import TrustedProxies
from keyguard.engine.records import KeyRecord
from keyguard.engine.verifier import PolicyEngine
from keyguard.features import audit_subscribers
from keyguard.keys.repository import (
    change_position,
    key_changes_after,
    legacy_key_ids,
    load_key_record,
    read_key_record,
)
from keyguard.oauth.clients import ClientRecord, load_client
from keyguard.oauth.server import OAuthServer
from keyguard.oauth.verifier import AccessTokenVerifier
from keyguard.server.tls_context import ClientCertificateTrust
from keyguard.settings import Settings
from keyguard.state.memory import memory_state
from keyguard.state.polling import PollingCacheBus
from keyguard.state.protocols import StateStores
from keyguard.state.redis import CLEAR_ALL, redis_state
from keyguard.storage.db import (
    create_engine,
    create_reader,
    migrate,
    schema_is_current,
    session_factory,
)
from keyguard.storage.keyring import KeyringError, root_secret

# Every feature's rows, registered before the first flush: foreign keys name tables
# (api_keys.account_id → accounts) that a process may otherwise never import.
from keyguard.tables import ALL_ROWS  # noqa: F401
from keyguard.uploads.views import SessionView, load_session_view
from keyguard.usage.counter import UsageCounter
from keyguard.webhooks.ssrf import Resolver

log = logging.getLogger("keyguard.runtime")


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    db: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    envelope: Envelope
    hasher: SecretHasher
    # Issues key ids with their keyed tag and admits only ids some key can have.
    key_ids: KeyIdTagger
    cache: KeyCache
    engine: PolicyEngine
    state: StateStores
    session_cache: ReadThroughCache[SessionView]
    # Signs short-lived photo download links (its own subkey of the master key).
    link_key: bytes
    # Subkeys of the accounts feature (CSRF tokens, device cookies, recovery codes).
    account_keys: AccountKeys
    trusted_proxies: TrustedProxies = field(default_factory=TrustedProxies)
    # KEYGUARD_CLIENT_CERT_HEADER: the only header trusted proxies forward certificates in.
    client_cert_header: str | None = None
    # Set by the HTTPS server (``keyguard serve``): certificates registered on keys are
    # added to it, which matters when it cannot accept unknown certificates.
    client_trust: ClientCertificateTrust | None = None
    refusals: RefusalRecorder | None = None
    usage: UsageCounter | None = None
    # How webhook hosts are resolved (registration and delivery); None: the system's.
    webhook_resolver: Resolver | None = None
    # The OAuth authorization server (CONTRACT §8); made by ``start``.
    oauth: OAuthServer = field(init=False)
    # In-flight cache-bus publications (kept referenced until done).
    _publishing: set[asyncio.Task[None]] = field(default_factory=set)
    # SQLite allows one writer; serialising our own write transactions in-process avoids
    # SQLITE_BUSY on lock upgrades. PostgreSQL needs no such lock.
    _write_lock: anyio.Lock | None = None
    # SQLite: the plain engine key-cache misses read through in a worker thread.
    _reader: Engine | None = None

    @classmethod
    async def start(cls, settings: Settings, *, clock: Clock | None = None) -> Runtime:
        clock = clock or SystemClock()
        url = settings.effective_database_url
        envelope, keys = _envelope(settings, url)
        if url.startswith("sqlite"):
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = create_engine(url)
        await migrate(db)
        # Every derived key comes from the keyring's root secret, not the master key, so
        # rotating the master key (re-sealing) changes none of them (storage/keyring.py).
        plain = session_factory(db)
        try:
            root = await root_secret(
                plain,
                envelope,
                fresh=await _is_fresh(plain),
                legacy_root=partial(_legacy_root, plain, keys),
            )
        except BaseException:
            await db.dispose()  # no connection left behind by a refused start
            raise
        sessions = session_factory(
            db,
            info={
                AUDIT_KEY: derive_subkey(root, "keyguard/audit-chain"),
                AUDIT_SUBSCRIBERS: audit_subscribers(),
            },
        )
        hasher = SecretHasher(derive_subkey(root, "keyguard/key-hash"))
        # Ids issued before the tag are admitted if they existed at start: none is made now.
        key_ids = KeyIdTagger(
            derive_subkey(root, "keyguard/key-id-tag"), await legacy_key_ids(sessions)
        )

        reader = create_reader(url)

        async def loader(key_id: str) -> KeyRecord | None:
            if reader is not None:
                return await anyio.to_thread.run_sync(read_key_record, reader, envelope, key_id)
            async with sessions() as session:
                return await load_key_record(session, envelope, key_id)

        cache = KeyCache(loader, clock, ttl=settings.key_cache_ttl_seconds)

        async def session_loader(session_id: str) -> SessionView | None:
            return await load_session_view(sessions, session_id)

        # Sessions never change after creation, so a long TTL is safe.
        session_cache = ReadThroughCache(session_loader, clock, ttl=300.0)
        if settings.redis_url:
            state = redis_state(
                settings.redis_url,
                failure=settings.state_failure,
                timeout=settings.state_timeout_seconds,
            )
        else:
            bus = PollingCacheBus(
                partial(key_changes_after, sessions), partial(change_position, sessions), clock
            )
            state = dataclasses.replace(memory_state(clock), cache_bus=bus, close=bus.close)
        runtime = cls(
            settings=settings,
            clock=clock,
            db=db,
            sessions=sessions,
            envelope=envelope,
            hasher=hasher,
            key_ids=key_ids,
            cache=cache,
            engine=PolicyEngine(cache, hasher, clock, state=state, key_ids=key_ids),
            state=state,
            session_cache=session_cache,
            link_key=derive_subkey(root, "keyguard/download-links"),
            account_keys=AccountKeys.derive(root),
            trusted_proxies=TrustedProxies(settings.trusted_proxies),
            client_cert_header=settings.client_cert_header,
            _write_lock=anyio.Lock() if url.startswith("sqlite") else None,
            _reader=reader,
        )
        await runtime._join_cache_bus()
        # Failed checks of known keys reach the audit log, counted and written in batches.
        runtime.refusals = RefusalRecorder(runtime)
        runtime.engine.on_refusal = runtime.refusals
        # A signed-in person's session cookie is a management API credential too.
        runtime.engine.session_verifier = SessionPrincipals(runtime)
        # An OAuth access token is a credential of every door too (CONTRACT §8).
        runtime.oauth = OAuthServer(runtime)
        # Made (or loaded) now, not inside the first token's transaction.
        await runtime.oauth.keys.signing_key()
        clients: ReadThroughCache[ClientRecord] = ReadThroughCache(
            partial(load_client, runtime), clock, ttl=30.0
        )
        runtime.engine.token_verifier = AccessTokenVerifier(
            runtime.oauth.tokens, runtime.oauth.revoked, clock, clients
        )
        runtime.refusals.start()
        # Every check of a known key is counted in memory and added to the usage buckets.
        runtime.usage = UsageCounter(runtime, interval=settings.usage_flush_seconds)
        runtime.engine.on_use = runtime.usage
        runtime.usage.start()
        return runtime

    async def _join_cache_bus(self) -> None:
        """Invalidations made here reach every instance; theirs reach us."""

        def on_message(key_id: str) -> None:
            if key_id == CLEAR_ALL:
                self.cache.clear()
            else:
                self.cache.forget(key_id)

        def publish(key_id: str) -> None:
            # Services invalidate synchronously after their commit; publishing must not
            # make them wait for Redis, and must never be lost to garbage collection.
            task = asyncio.get_running_loop().create_task(self.state.cache_bus.publish(key_id))
            self._publishing.add(task)
            task.add_done_callback(self._published)

        await self.state.cache_bus.start(on_message)
        self.cache.on_invalidate = publish

    def _published(self, task: asyncio.Task[None]) -> None:
        self._publishing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # Other instances drop the key when their cache TTL runs out instead.
            log.warning("cache bus publish failed: %s", type(task.exception()).__name__)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: commits on success, rolls back on any exception."""
        if self._write_lock is None:
            async with self.sessions.begin() as session:
                yield session
            return
        async with self._write_lock, self.sessions.begin() as session:
            yield session

    async def readiness(self) -> list[str]:
        """What this instance needs and cannot reach now (``GET /readyz``): ``database``
        (not answering), ``migrations`` (not at this version's head), ``redis``."""
        down: list[str] = []
        try:
            with anyio.fail_after(self.settings.state_timeout_seconds):
                if not await schema_is_current(self.db):
                    down.append("migrations")
        except Exception as exc:  # what failed is named, never how (no URL, no password)
            log.warning("readiness: database check failed: %s", type(exc).__name__)
            down.append("database")
        try:
            await self.state.ready()
        except Exception as exc:
            log.warning("readiness: redis check failed: %s", type(exc).__name__)
            down.append("redis")
        return down

    @property
    def engines(self) -> tuple[Engine, ...]:
        """Every engine that runs statements on this runtime's database (the async one's
        sync core, and the SQLite reader of key-cache misses): what to listen to for
        every statement."""
        readers = () if self._reader is None else (self._reader,)
        return (self.db.sync_engine, *readers)

    def certificate_pinned(self, pem: str) -> None:
        # Only matters when the TLS layer cannot accept unknown certificates (fallback).
        if self.client_trust is not None:
            self.client_trust.add_pem(pem)

    async def close(self) -> None:
        if self.refusals is not None:
            await self.refusals.close()
        if self.usage is not None:
            await self.usage.close()
        if self._publishing:
            await asyncio.gather(*self._publishing, return_exceptions=True)
        await self.state.close()
        if self._reader is not None:
            self._reader.dispose()
        await self.db.dispose()


def _sqlite_file(url: str) -> Path | None:
    database = make_url(url).database
    return None if not database or database == ":memory:" else Path(database)


def _envelope(settings: Settings, url: str) -> tuple[Envelope, list[bytes]]:
    """The master key that seals, and every key that still opens (a rotation's previous
    keys: KEYGUARD_PREVIOUS_MASTER_KEYS, or the data dir's ``master.key.previous``)."""
    previous = (
        decode_master_keys(settings.previous_master_keys.get_secret_value())
        if settings.previous_master_keys is not None
        else []
    )
    if settings.master_key is not None:
        master = decode_master_key(settings.master_key.get_secret_value())
        return Envelope(master, *previous), [master, *previous]
    if not url.startswith("sqlite"):
        raise ValueError("KEYGUARD_MASTER_KEY must be set when several instances share a database")
    data_dir = settings.data_dir
    master = load_or_create_master_key(data_dir, database=_sqlite_file(url))

    def on_disk() -> list[bytes]:
        # `keyguard master-key rotate` may have written a new key while we run.
        current = data_dir / "master.key"
        found = [decode_master_key(current.read_text())] if current.exists() else []
        return [*found, *previous_master_keys(data_dir)]

    older = [*previous, *previous_master_keys(data_dir)]
    return Envelope(master, *older, more=on_disk), [master, *older]


async def _is_fresh(sessions: async_sessionmaker[AsyncSession]) -> bool:
    """Nothing was ever written (every change is audited): no hash or seal to keep."""
    async with sessions() as session:
        seq = (await session.execute(select(AuditHead.seq).where(AuditHead.id == 1))).scalar()
    return not seq


async def _legacy_root(sessions: async_sessionmaker[AsyncSession], keys: list[bytes]) -> bytes:
    """Which master key a database from before the keyring was derived from: the one whose
    audit chain key reproduces its first event's hash (every database's first write is
    audited). Guessing wrong would make every API key and the chain unverifiable for good,
    so no match is a refusal to start."""
    async with sessions() as session:
        first = (
            await session.execute(select(AuditEvent).where(AuditEvent.seq == 1))
        ).scalar_one_or_none()
    if first is None:
        return keys[0]
    body = canonical(
        first.seq, first.at, first.project_id, first.actor, first.action, first.target, first.data
    )
    for key in keys:
        if chain_hash(derive_subkey(key, "keyguard/audit-chain"), GENESIS, body) == first.hash:
            return key
    raise KeyringError(
        "none of the master keys given is the one this database was created with: "
        "set it as KEYGUARD_MASTER_KEY (or in KEYGUARD_PREVIOUS_MASTER_KEYS)"
    )
