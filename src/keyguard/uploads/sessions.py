"""Upload sessions (CONTRACT §6): the seeds' own example resource."""

from __future__ import annotations

from datetime import timedelta

import anyio
from sqlalchemy import func, select

from keyguard.audit import service as audit
from keyguard.clock import utc_from_ts
from keyguard.crypto.passwords import hash_session_password
from keyguard.errors import NotFound, ValidationFailed
from keyguard.ids import new_id
from keyguard.uploads.context import UploadContext
from keyguard.uploads.models import Photo, UploadSession
from keyguard.uploads.views import SessionView
from keyguard.webhooks.endpoints import check_webhook_url


async def create_session(
    ctx: UploadContext,
    *,
    project_id: str,
    key_id: str,
    delivery_mode: str,
    webhook_url: str | None,
    password: str | None,
    expires_in: int,
) -> SessionView:
    if delivery_mode == "webhook":
        if not webhook_url:
            raise ValidationFailed("webhook_url is required when delivery_mode is 'webhook'")
        # The same check (and the same error codes) as registered webhook endpoints.
        webhook_url = await check_webhook_url(ctx, webhook_url)
    elif webhook_url:
        raise ValidationFailed("webhook_url is only used when delivery_mode is 'webhook'")
    password_hash = None
    if password is not None:
        # bcrypt is slow on purpose: keep it off the event loop.
        password_hash = await anyio.to_thread.run_sync(hash_session_password, password)
    now = utc_from_ts(ctx.clock.now())
    session_row = UploadSession(
        id=new_id("sess"),
        project_id=project_id,
        key_id=key_id,
        delivery_mode=delivery_mode,
        webhook_url=webhook_url,
        password_hash=password_hash,
        max_photos=20,
        created_at=now,
        expires_at=now + timedelta(seconds=expires_in),
    )
    async with ctx.transaction() as db:
        db.add(session_row)
        await db.flush()
        await audit.record(
            db,
            at=now,
            actor=key_id,
            action="session.created",
            target=session_row.id,
            project_id=project_id,
            data={"delivery_mode": delivery_mode, "password_protected": password is not None},
        )
    return SessionView.of(session_row)


async def get_session(ctx: UploadContext, session_id: str, *, project_id: str) -> SessionView:
    view = await ctx.session_cache.get(session_id)
    # Another project's session is answered as if it did not exist.
    if view is None or view.project_id != project_id:
        raise NotFound()
    return view


RECENT_SESSIONS = 50


async def recent_sessions(
    ctx: UploadContext, project_id: str, *, limit: int = RECENT_SESSIONS
) -> list[tuple[SessionView, int]]:
    """The project's newest upload sessions (still kept), each with its photo count."""
    own = select(UploadSession.id).where(UploadSession.project_id == project_id)
    photos = (
        select(Photo.session_id, func.count().label("n"))
        .where(Photo.session_id.in_(own))  # this project's photos only
        .group_by(Photo.session_id)
        .subquery()
    )
    query = (
        select(UploadSession, func.coalesce(photos.c.n, 0))
        .outerjoin(photos, photos.c.session_id == UploadSession.id)
        .where(UploadSession.project_id == project_id)
        .order_by(UploadSession.created_at.desc(), UploadSession.id.desc())
        .limit(limit)
    )
    async with ctx.sessions() as db:
        rows = (await db.execute(query)).all()
    return [(SessionView.of(row), int(count)) for row, count in rows]
