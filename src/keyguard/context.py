"""What every service needs from the composition root, as a Protocol (services never
import it). A feature that needs more extends it beside its service (``UploadContext``,
``WebhookContext``)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from keyguard.clock import Clock
from keyguard.crypto.envelope import Envelope
from keyguard.crypto.hashing import SecretHasher
from keyguard.crypto.keys import KeyIdTagger
from keyguard.engine.cache import KeyCache
from keyguard.settings import Settings
from keyguard.state.protocols import StateStores


class ServiceContext(Protocol):
    settings: Settings
    clock: Clock
    envelope: Envelope
    hasher: SecretHasher
    key_ids: KeyIdTagger  # issues every key id (with its keyed tag)
    cache: KeyCache
    state: StateStores
    sessions: async_sessionmaker[AsyncSession]

    def transaction(self) -> AbstractAsyncContextManager[AsyncSession]: ...

    def certificate_pinned(self, pem: str) -> None:
        """A client certificate was pinned to a key: the TLS layer may need to learn it."""
