"""Retention: old webhook history and the photos of long-expired sessions are removed.

Without it the outbox and the photo store only ever grow. Two settings, in days (0 keeps
for ever):

- ``KEYGUARD_WEBHOOK_RETENTION_DAYS`` (90, as Svix keeps messages): a message older than
  that goes, with its deliveries and their attempts, once none of its deliveries is still
  pending. An undelivered event is never dropped, however old.
- ``KEYGUARD_PHOTO_RETENTION_DAYS`` (0): the photos of a session that expired that long
  ago go, rows first and files after their commit, so a crash leaves at worst an orphan
  file, never a row without its file (the order uploads use too). The session row stays,
  and one ``session.photos_deleted`` audit event per session says how many went.

The audit log is never pruned: it is a hash chain, and deleting from it is tampering.

    sweeper = RetentionSweeper(runtime)
    async with sweeper.running():   # app lifespan: a sweep at start, then every hour
        ...
    await prune(runtime, store)     # one sweep, as tests and operators call it
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, exists, select

from keyguard.clock import utc_from_ts
from keyguard.services import audit
from keyguard.services.context import ServiceContext
from keyguard.storage.models import (
    Photo,
    UploadSession,
    WebhookAttempt,
    WebhookDelivery,
    WebhookMessage,
)
from keyguard.uploads.store import FileStore

log = logging.getLogger("keyguard.retention")

# Rows per transaction: short write transactions, so a large backlog never holds the
# SQLite writer (or PostgreSQL row locks) for long.
BATCH = 500


@dataclass(frozen=True, slots=True)
class PruneReport:
    webhook_messages: int = 0
    photos: int = 0


async def prune(ctx: ServiceContext, store: FileStore, *, batch: int = BATCH) -> PruneReport:
    """One sweep of both kinds of retention; returns what was removed."""
    messages = photos = 0
    if ctx.settings.webhook_retention_days:
        while removed := await _prune_webhook_messages(ctx, batch):
            messages += removed
    if ctx.settings.photo_retention_days:
        while removed := await _prune_photos(ctx, store, batch):
            photos += removed
    return PruneReport(webhook_messages=messages, photos=photos)


async def _prune_webhook_messages(ctx: ServiceContext, batch: int) -> int:
    days = ctx.settings.webhook_retention_days
    cutoff = utc_from_ts(ctx.clock.now()) - timedelta(days=days)
    pending = exists().where(
        WebhookDelivery.message_id == WebhookMessage.id, WebhookDelivery.status == "pending"
    )
    async with ctx.transaction() as db:
        ids = list(
            (
                await db.execute(
                    select(WebhookMessage.id)
                    .where(WebhookMessage.created_at < cutoff, ~pending)
                    .order_by(WebhookMessage.created_at)
                    .limit(batch)
                )
            ).scalars()
        )
        if not ids:
            return 0
        # A delivery made pending again (a redelivery) since the select keeps its attempts,
        # and its message stays while any delivery is left.
        finished = select(WebhookDelivery.id).where(
            WebhookDelivery.message_id.in_(ids), WebhookDelivery.status != "pending"
        )
        await db.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(finished)))
        await db.execute(
            delete(WebhookDelivery).where(
                WebhookDelivery.message_id.in_(ids), WebhookDelivery.status != "pending"
            )
        )
        left = exists().where(WebhookDelivery.message_id == WebhookMessage.id)
        result = await db.execute(delete(WebhookMessage).where(WebhookMessage.id.in_(ids), ~left))
    # Every round removes at least one message or ends the sweep.
    return int(cast("CursorResult[Any]", result).rowcount)


async def _prune_photos(ctx: ServiceContext, store: FileStore, batch: int) -> int:
    days = ctx.settings.photo_retention_days
    now = utc_from_ts(ctx.clock.now())
    cutoff = now - timedelta(days=days)
    async with ctx.transaction() as db:
        rows = (
            await db.execute(
                select(Photo.id, Photo.storage_key, UploadSession.id, UploadSession.project_id)
                .join(UploadSession, Photo.session_id == UploadSession.id)
                .where(UploadSession.expires_at < cutoff)
                .order_by(Photo.created_at, Photo.id)
                .limit(batch)
            )
        ).all()
        if not rows:
            return 0
        await db.execute(delete(Photo).where(Photo.id.in_([r[0] for r in rows])))
        per_session = Counter((r[2], r[3]) for r in rows)
        for (session_id, project_id), count in sorted(per_session.items()):
            await audit.record(
                db,
                at=now,
                actor="keyguard",
                action="session.photos_deleted",
                target=session_id,
                project_id=project_id,
                data={"count": count, "retention_days": days},
            )
    for row in rows:
        await store.delete(row[1])
    return len(rows)


class RetentionSweeper:
    """Runs :func:`prune` at start-up and every ``interval`` seconds after."""

    def __init__(self, ctx: ServiceContext, store: FileStore, *, interval: float = 3600.0) -> None:
        self._ctx = ctx
        self._store = store
        self._interval = interval

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[RetentionSweeper]:
        task = asyncio.get_running_loop().create_task(self._loop())
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        while True:
            try:
                report = await prune(self._ctx, self._store)
            except Exception as exc:  # housekeeping must never take the server down
                log.warning("retention sweep failed: %s", type(exc).__name__)
            else:
                if report.webhook_messages or report.photos:
                    log.info(
                        "retention removed %d webhook messages and %d photos",
                        report.webhook_messages,
                        report.photos,
                    )
            await asyncio.sleep(self._interval)


__all__ = ["BATCH", "PruneReport", "RetentionSweeper", "prune"]
