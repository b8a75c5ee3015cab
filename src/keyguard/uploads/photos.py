"""Photos uploaded into upload sessions by end users (CONTRACT §6).

An upload is checked in this order, cheapest refusal first: the session exists (404)
and has not expired (410 ``session_expired``); the throttle of wrong passwords (429) then
the password itself (401 ``session_password_invalid``, counted); the photo count (409
``photo_limit_reached``); size (413) and type sniffed from the bytes (415). The file is
stored under a generated id; the client's file name is only kept, sanitised, for display.
In webhook mode the upload and its ``photo.uploaded`` event commit together.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import BinaryIO

import anyio
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from keyguard.audit import service as audit
from keyguard.clock import utc_from_ts
from keyguard.crypto.passwords import verify_session_password
from keyguard.errors import NotFound, PayloadTooLarge, RateLimited
from keyguard.ids import new_id
from keyguard.state.protocols import RateLimiter
from keyguard.uploads.context import UploadContext
from keyguard.uploads.errors import (
    NotAnImage,
    PhotoLimitReached,
    SessionExpired,
    SessionPasswordInvalid,
)
from keyguard.uploads.filenames import display_name
from keyguard.uploads.models import Photo, UploadSession
from keyguard.uploads.sniff import SNIFF_BYTES, sniff_image_type
from keyguard.uploads.store import FileStore
from keyguard.uploads.views import PhotoView, SessionView
from keyguard.webhooks.events import PHOTO_UPLOADED
from keyguard.webhooks.outbox import enqueue

# Wrong (or missing) passwords: per session (reset by a right password) and per client
# IP (not reset). Right passwords count nowhere, so many uploaders behind one NAT'd
# address are never throttled by each other's successful uploads.
SESSION_ATTEMPTS = (10, 300)
IP_ATTEMPTS = (60, 600)


@dataclass(frozen=True, slots=True)
class IncomingFile:
    """A received file: its stream (positioned at 0), its size and the client's name."""

    stream: BinaryIO
    size: int
    filename: str | None


async def session_for_upload(ctx: UploadContext, session_id: str) -> SessionView:
    """The session an end user may upload into: 404 unknown, 410 expired."""
    async with ctx.sessions() as db:
        row = await db.get(UploadSession, session_id)
    if row is None:
        raise NotFound()
    if row.expires_at <= utc_from_ts(ctx.clock.now()):
        raise SessionExpired()
    return SessionView.of(row)


async def check_password(
    row: SessionView, password: str | None, *, limiter: RateLimiter, client_ip: str
) -> None:
    """Verify (bcrypt, off the event loop), throttled. Sessions without a password
    accept anyone holding the link.

    - Per session, every attempt is counted *before* bcrypt runs, and a right password
      clears the count: parallel guesses cannot all slip in before the first failure is
      counted, and an uploader who knows the password is never slowed down.
    - Per client IP, only failures are counted (one office behind a NAT uploading many
      photos with the right password is never locked out), and a blocked IP is refused
      before the password is looked at, so a throttled guess learns nothing.
    """
    if row.password_hash is None:
        return
    ip_bucket, ip_limit, ip_period = f"upload-pw:ip:{client_ip}", *IP_ATTEMPTS
    wait = await limiter.blocked(ip_bucket, ip_limit, ip_period)
    if wait:
        raise RateLimited("Too many password attempts; try again later", retry_after=wait)
    session_bucket, limit, period = f"upload-pw:session:{row.id}", *SESSION_ATTEMPTS
    attempt = await limiter.hit(session_bucket, limit, period)
    if not attempt.allowed:
        raise RateLimited(
            "Too many password attempts; try again later", retry_after=attempt.reset_seconds
        )
    if not password or not await anyio.to_thread.run_sync(
        verify_session_password, row.password_hash, password
    ):
        await limiter.hit(ip_bucket, ip_limit, ip_period)
        raise SessionPasswordInvalid()
    await limiter.reset(session_bucket, limit, period)


async def add_photo(
    ctx: UploadContext,
    store: FileStore,
    row: SessionView,
    upload: IncomingFile,
    *,
    download_base: str,
    max_bytes: int,
) -> PhotoView:
    """Validate and keep one photo; ``download_base`` is ``https://host`` for the link
    the ``photo.uploaded`` webhook carries."""
    if upload.size > max_bytes:
        raise PayloadTooLarge(f"a photo may be at most {max_bytes} bytes")
    if upload.size == 0:
        raise NotAnImage("the file is empty")
    head = upload.stream.read(SNIFF_BYTES)
    content_type = sniff_image_type(head)
    if content_type is None:
        raise NotAnImage()
    upload.stream.seek(0)
    digest = await anyio.to_thread.run_sync(_sha256, upload.stream)
    upload.stream.seek(0)
    now = utc_from_ts(ctx.clock.now())
    photo = Photo(
        id=new_id("pho"),
        session_id=row.id,
        filename=display_name(upload.filename),
        content_type=content_type,
        size=upload.size,
        sha256=digest,
        storage_key="",
        created_at=now,
    )
    photo.storage_key = f"{row.id}/{photo.id}"
    await _check_count(ctx, row)  # early, before writing the file
    # The file goes first, outside the write transaction (SQLite has one writer): a
    # crash then leaves at worst an orphan file, never a row without its file.
    await store.put(photo.storage_key, upload.stream)
    try:
        async with ctx.transaction() as db:
            # Lock the session row: concurrent uploads on PostgreSQL count one at a time.
            locked = await db.get(UploadSession, row.id, with_for_update=True)
            if locked is None:  # pragma: no cover - sessions are never deleted
                raise NotFound()
            await _check_count(ctx, locked, db)
            db.add(photo)
            await db.flush()
            await audit.record(
                db,
                at=now,
                actor=f"session:{row.id}",
                action="photo.uploaded",
                target=photo.id,
                project_id=row.project_id,
                data={"session_id": row.id, "size": photo.size, "content_type": content_type},
            )
            await enqueue(
                db,
                project_id=row.project_id,
                event_type=PHOTO_UPLOADED,
                data=photo_event_data(row, photo, download_base),
                at=now,
                upload_session=locked if locked.delivery_mode == "webhook" else None,
            )
    except BaseException:
        with anyio.CancelScope(shield=True):
            await store.delete(photo.storage_key)
        raise
    return PhotoView.of(photo)


def photo_event_data(row: SessionView, photo: Photo, download_base: str) -> dict[str, object]:
    """The ``data`` of ``photo.uploaded``; the worker signs ``download_url`` per attempt."""
    return {
        "session_id": row.id,
        "photo": photo_metadata(photo),
        "download_url": f"{download_base}/v1/photos/{photo.id}/download",
    }


def photo_metadata(photo: Photo) -> dict[str, object]:
    return {
        "id": photo.id,
        "filename": photo.filename,
        "content_type": photo.content_type,
        "size": photo.size,
        "sha256": photo.sha256,
        "created_at": photo.created_at.isoformat().replace("+00:00", "Z"),
    }


async def _check_count(
    ctx: UploadContext, row: SessionView | UploadSession, db: AsyncSession | None = None
) -> None:
    query = select(func.count()).where(Photo.session_id == row.id)
    if db is None:
        async with ctx.sessions() as reader:
            count = (await reader.execute(query)).scalar_one()
    else:
        count = (await db.execute(query)).scalar_one()
    if count >= row.max_photos:
        raise PhotoLimitReached(f"this session accepts at most {row.max_photos} photos")


def _sha256(stream: BinaryIO) -> str:
    h = hashlib.sha256()
    while chunk := stream.read(1 << 20):
        h.update(chunk)
    return h.hexdigest()


async def list_photos(ctx: UploadContext, session_id: str, *, project_id: str) -> list[PhotoView]:
    async with ctx.sessions() as db:
        row = await db.get(UploadSession, session_id)
        if row is None or row.project_id != project_id:
            raise NotFound()
        found = await db.execute(
            select(Photo).where(Photo.session_id == session_id).order_by(Photo.created_at, Photo.id)
        )
        return [PhotoView.of(photo) for photo in found.scalars()]


async def get_photo(ctx: UploadContext, photo_id: str) -> PhotoView:
    async with ctx.sessions() as db:
        photo = await db.get(Photo, photo_id)
    if photo is None:
        raise NotFound()
    return PhotoView.of(photo)


__all__ = [
    "IncomingFile",
    "add_photo",
    "check_password",
    "get_photo",
    "list_photos",
    "photo_metadata",
    "session_for_upload",
]
