"""One change to one project key: locked, audited, and dropped from the cache after commit.

Every key change needs the same four steps: lock the live row, change it, record the
audit event in the same transaction, and invalidate the cached record once the
transaction has committed (so revocation is immediate). Written out by hand, one
forgotten step is a key that keeps working after it was revoked; here it cannot be.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from keyguard.audit import service as audit
from keyguard.clock import utc_from_ts
from keyguard.context import ServiceContext
from keyguard.errors import NotFound
from keyguard.keys.errors import KeyAlreadyRevoked
from keyguard.keys.models import ApiKey


@dataclass(slots=True)
class KeyChange:
    session: AsyncSession
    row: ApiKey
    now: datetime
    actor: str

    async def record(self, action: str, **data: Any) -> None:
        """Stamp ``updated_at`` and audit ``action`` on this key, in this transaction."""
        self.row.updated_at = self.now
        await audit.record(
            self.session,
            at=self.now,
            actor=self.actor,
            action=action,
            target=self.row.id,
            project_id=self.row.project_id,
            data=data or None,
        )


async def project_key(session: AsyncSession, key_id: str, *, lock: bool = False) -> ApiKey:
    row = await session.get(ApiKey, key_id, with_for_update=lock)
    if row is None or row.is_root:  # root keys are not managed through project routes
        raise NotFound()
    return row


async def live_project_key(session: AsyncSession, key_id: str) -> ApiKey:
    """A project key that can still change: ``NotFound``, or ``KeyAlreadyRevoked`` (409).

    Locked for the caller's transaction (PostgreSQL; SQLite serialises every write): a
    PATCH of ``expires_at`` and a rotation of the same key must not both read it as it
    was, or the PATCH could revive the key the rotation just retired.
    """
    row = await project_key(session, key_id, lock=True)
    if row.revoked_at is not None:
        raise KeyAlreadyRevoked()
    return row


@asynccontextmanager
async def changing_key(
    ctx: ServiceContext, key_id: str, *, actor: str, revoked_ok: bool = False
) -> AsyncIterator[KeyChange]:
    """The locked key (live unless ``revoked_ok``) inside one transaction; the cache
    entry is dropped after the commit, whether or not the body changed anything."""
    async with ctx.transaction() as session:
        if revoked_ok:
            row = await project_key(session, key_id, lock=True)
        else:
            row = await live_project_key(session, key_id)
        yield KeyChange(session, row, utc_from_ts(ctx.clock.now()), actor)
    ctx.cache.invalidate(key_id)
