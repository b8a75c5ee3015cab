"""The keyring: the secret every derived key comes from, sealed with the master key.

The master key used to be that secret itself, so rotating it would have changed the
key-hash pepper (every API key would stop verifying), the audit chain key and every
session cookie key. Now those derive from a *root secret* stored here, sealed with the
master key like any other recoverable secret: a master-key rotation re-seals it and
nothing derived from it changes. A database created before the keyring keeps the first
master key as its root secret (so existing hashes still verify); a fresh one gets 32
random bytes, so a master key alone, without the database, derives nothing.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Awaitable, Callable

from sqlalchemy import String, Text, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from keyguard.crypto.envelope import DecryptionError, Envelope
from keyguard.storage.base import Base
from keyguard.storage.reseal import SealedColumn

ROOT = "root"


class KeyringEntry(Base):
    __tablename__ = "keyring"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    sealed: Mapped[str] = mapped_column(Text)


def context(name: str) -> str:
    return f"keyring:{name}"


class KeyringError(ValueError):
    """No key given opens or explains this database (a configuration error)."""


async def root_secret(
    sessions: async_sessionmaker[AsyncSession],
    envelope: Envelope,
    *,
    fresh: bool,
    legacy_root: Callable[[], Awaitable[bytes]],
) -> bytes:
    """The root secret, stored on first start: random for a ``fresh`` database, else the
    master key the existing data was derived from (``legacy_root`` finds it among the keys
    given: after an upgrade, the current key may already be a newer one)."""
    entry = await _entry(sessions)
    if entry is None:
        secret = secrets.token_bytes(32) if fresh else await legacy_root()
        sealed = envelope.seal(base64.b64encode(secret).decode(), context(ROOT))
        try:
            async with sessions() as session, session.begin():
                session.add(KeyringEntry(name=ROOT, sealed=sealed))
        except IntegrityError:  # another instance stored it first: use theirs
            pass
        entry = await _entry(sessions)
        assert entry is not None
    try:
        return base64.b64decode(envelope.open(entry.sealed, context(ROOT)))
    except DecryptionError:
        raise KeyringError(
            "no master key given opens this database's keyring: set the key it was sealed "
            "with (KEYGUARD_MASTER_KEY, or KEYGUARD_PREVIOUS_MASTER_KEYS during a rotation)"
        ) from None


async def _entry(sessions: async_sessionmaker[AsyncSession]) -> KeyringEntry | None:
    async with sessions() as session:
        return (
            await session.execute(select(KeyringEntry).where(KeyringEntry.name == ROOT))
        ).scalar_one_or_none()


SEALED = (SealedColumn(KeyringEntry, "sealed", lambda row: context(row.name)),)
