"""What the upload services hand the edges: frozen views, never ORM rows.

A session is read on the hot path as an immutable snapshot, cached in memory. Sessions
never change after creation, so a cached snapshot is never stale (expiry is checked
against the clock by the callers); the cache only saves the database round trip.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from keyguard.uploads.models import Photo, UploadSession


@dataclass(frozen=True, slots=True)
class SessionView:
    id: str
    project_id: str
    delivery_mode: str
    webhook_url: str | None
    created_at: datetime
    expires_at: datetime
    max_photos: int
    # The bcrypt hash, for the password check only; never rendered, never in a repr.
    password_hash: str | None = field(default=None, repr=False, compare=False)

    @property
    def password_protected(self) -> bool:
        return self.password_hash is not None

    @classmethod
    def of(cls, row: UploadSession) -> SessionView:
        return cls(
            id=row.id,
            project_id=row.project_id,
            delivery_mode=row.delivery_mode,
            webhook_url=row.webhook_url,
            created_at=row.created_at,
            expires_at=row.expires_at,
            max_photos=row.max_photos,
            password_hash=row.password_hash,
        )


@dataclass(frozen=True, slots=True)
class PhotoView:
    id: str
    session_id: str
    filename: str
    content_type: str
    size: int
    sha256: str
    storage_key: str  # where the file store keeps the bytes
    created_at: datetime

    @classmethod
    def of(cls, row: Photo) -> PhotoView:
        return cls(
            id=row.id,
            session_id=row.session_id,
            filename=row.filename,
            content_type=row.content_type,
            size=row.size,
            sha256=row.sha256,
            storage_key=row.storage_key,
            created_at=row.created_at,
        )


async def load_session_view(
    sessions: async_sessionmaker[AsyncSession], session_id: str
) -> SessionView | None:
    async with sessions() as db:
        row = await db.get(UploadSession, session_id)
    return None if row is None else SessionView.of(row)
