"""An upload session as read on the hot path: an immutable snapshot, cached in memory.

Sessions never change after creation, so a cached snapshot is never stale (expiry is
checked against the clock by the callers); the cache only saves the database round trip.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from keyguard.uploads.models import UploadSession


@dataclass(frozen=True, slots=True)
class SessionView:
    id: str
    project_id: str
    delivery_mode: str
    webhook_url: str | None
    password_protected: bool
    created_at: datetime
    expires_at: datetime

    @classmethod
    def from_row(cls, row: UploadSession) -> SessionView:
        return cls(
            id=row.id,
            project_id=row.project_id,
            delivery_mode=row.delivery_mode,
            webhook_url=row.webhook_url,
            password_protected=row.password_hash is not None,
            created_at=row.created_at,
            expires_at=row.expires_at,
        )


async def load_session_view(
    sessions: async_sessionmaker[AsyncSession], session_id: str
) -> SessionView | None:
    async with sessions() as db:
        row = await db.get(UploadSession, session_id)
    return None if row is None else SessionView.from_row(row)
