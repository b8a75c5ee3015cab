"""What services need from the composition root, as a Protocol (services never import it)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from keyguard.clock import Clock
from keyguard.crypto.envelope import Envelope
from keyguard.crypto.hashing import SecretHasher
from keyguard.engine.cache import KeyCache, ReadThroughCache
from keyguard.settings import Settings
from keyguard.state.protocols import StateStores
from keyguard.uploads.views import SessionView
from keyguard.webhooks.ssrf import Resolver


class ServiceContext(Protocol):
    settings: Settings
    clock: Clock
    envelope: Envelope
    hasher: SecretHasher
    cache: KeyCache
    session_cache: ReadThroughCache[SessionView]
    link_key: bytes
    state: StateStores
    sessions: async_sessionmaker[AsyncSession]
    # How webhook hosts are resolved, at registration and by the delivery worker alike;
    # None: the system's resolver (tests put a fake one here, so nothing touches DNS).
    webhook_resolver: Resolver | None

    def transaction(self) -> AbstractAsyncContextManager[AsyncSession]: ...
