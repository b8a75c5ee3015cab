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

OAuth bookkeeping goes a day after it stops mattering: authorization codes and the
records of access tokens a day after they expired (a code's reuse is refused as expired
until then, and revoked tokens are refused by the shared state, not these rows), refresh
tokens a day after they expired (a spent one is kept that long: presented again it
revokes its family).

The audit log is never pruned: it is a hash chain, and deleting from it is tampering.

    sweeper = RetentionSweeper(runtime, store)
    async with sweeper.running():   # app lifespan: a sweep at start, then every hour
        ...
    await prune(runtime, store)     # one sweep, as tests and operators call it
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, exists, or_, select

from keyguard.audit import service as audit
from keyguard.clock import utc_from_ts
from keyguard.context import ServiceContext
from keyguard.oauth.models import OAuthAccessToken, OAuthCode, OAuthRefreshToken
from keyguard.periodic import periodic
from keyguard.uploads.models import Photo, UploadSession
from keyguard.uploads.store import FileStore
from keyguard.usage.models import AnomalyClaim, KeyNetwork, UsageBucket
from keyguard.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookMessage

log = logging.getLogger("keyguard.retention")

# Rows per transaction: short write transactions, so a large backlog never holds the
# SQLite writer (or PostgreSQL row locks) for long.
BATCH = 500


@dataclass(frozen=True, slots=True)
class PruneReport:
    webhook_messages: int = 0
    photos: int = 0
    usage_buckets: int = 0
    oauth_rows: int = 0


async def prune(ctx: ServiceContext, store: FileStore, *, batch: int = BATCH) -> PruneReport:
    """One sweep of both kinds of retention; returns what was removed."""
    messages = photos = 0
    if ctx.settings.webhook_retention_days:
        while removed := await _prune_webhook_messages(ctx, batch):
            messages += removed
    if ctx.settings.photo_retention_days:
        while removed := await _prune_photos(ctx, store, batch):
            photos += removed
    return PruneReport(
        webhook_messages=messages,
        photos=photos,
        usage_buckets=await _prune_usage(ctx),
        oauth_rows=await _prune_oauth(ctx),
    )


async def _prune_oauth(ctx: ServiceContext) -> int:
    cutoff = utc_from_ts(ctx.clock.now() - 86400)
    removed = 0
    for model, column in (
        (OAuthCode, OAuthCode.expires_at),
        (OAuthAccessToken, OAuthAccessToken.expires_at),
        (OAuthRefreshToken, OAuthRefreshToken.expires_at),
    ):
        async with ctx.transaction() as db:
            done = await db.execute(delete(model).where(column < cutoff))
            removed += int(getattr(done, "rowcount", 0) or 0)
    return removed


async def _prune_usage(ctx: ServiceContext) -> int:
    """Minute and hour usage buckets past their retention (day buckets are kept: a
    year of them is 365 rows per key and answer)."""
    now = ctx.clock.now()
    removed = 0
    for granularity, days in (
        ("minute", ctx.settings.usage_minute_retention_days),
        ("hour", ctx.settings.usage_hour_retention_days),
    ):
        if not days:
            continue
        async with ctx.transaction() as db:
            done = await db.execute(
                delete(UsageBucket).where(
                    UsageBucket.granularity == granularity,
                    UsageBucket.start < utc_from_ts(now - days * 86400),
                )
            )
            removed += int(getattr(done, "rowcount", 0) or 0)
    # Networks unused for longer than any new_network threshold, and past hourly claims.
    for model, column, days in (
        (KeyNetwork, KeyNetwork.last_seen, 400),
        (AnomalyClaim, AnomalyClaim.reported_at, 1),
    ):
        async with ctx.transaction() as db:
            done = await db.execute(delete(model).where(column < utc_from_ts(now - days * 86400)))
            removed += int(getattr(done, "rowcount", 0) or 0)
    return removed


async def _prune_webhook_messages(ctx: ServiceContext, batch: int) -> int:
    days = ctx.settings.webhook_retention_days
    cutoff = utc_from_ts(ctx.clock.now()) - timedelta(days=days)
    # Kept: anything pending, and anything with activity (an attempt, a redelivery, a
    # cancellation) within the retention period, so history is kept N days after it ends.
    active = exists().where(
        WebhookDelivery.message_id == WebhookMessage.id,
        or_(WebhookDelivery.status == "pending", WebhookDelivery.updated_at >= cutoff),
    )
    async with ctx.transaction() as db:
        # Locked (PostgreSQL): a concurrent redelivery key-share-locks its message first,
        # so it either is skipped here or finds the message gone (404), never an FK error.
        ids = list(
            (
                await db.execute(
                    select(WebhookMessage.id)
                    .where(WebhookMessage.created_at < cutoff, ~active)
                    .order_by(WebhookMessage.created_at)
                    .limit(batch)
                    .with_for_update(skip_locked=True)
                )
            ).scalars()
        )
        if not ids:
            return 0
        deliveries = select(WebhookDelivery.id).where(WebhookDelivery.message_id.in_(ids))
        await db.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(deliveries)))
        await db.execute(delete(WebhookDelivery).where(WebhookDelivery.message_id.in_(ids)))
        await db.execute(delete(WebhookMessage).where(WebhookMessage.id.in_(ids)))
    return len(ids)


async def _prune_photos(ctx: ServiceContext, store: FileStore, batch: int) -> int:
    days = ctx.settings.photo_retention_days
    now = utc_from_ts(ctx.clock.now())
    cutoff = now - timedelta(days=days)
    # A session whose photo.uploaded webhooks are still being retried keeps its photos:
    # those webhooks carry download links.
    retrying = exists().where(
        WebhookDelivery.session_id == UploadSession.id, WebhookDelivery.status == "pending"
    )
    expired = (
        select(UploadSession.id).where(UploadSession.expires_at < cutoff, ~retrying)
    ).scalar_subquery()
    async with ctx.transaction() as db:
        chosen = (
            select(Photo.id)
            .where(Photo.session_id.in_(expired))
            .order_by(Photo.created_at, Photo.id)
            .limit(batch)
        )
        # What the DELETE really removed (not what a SELECT saw): two instances sweeping
        # at once must not both audit the same photos.
        gone = (
            await db.execute(
                delete(Photo)
                .where(Photo.id.in_(chosen))
                .returning(Photo.session_id, Photo.storage_key)
            )
        ).all()
        if not gone:
            return 0
        per_session = Counter(session_id for session_id, _ in gone)
        found = await db.execute(
            select(UploadSession.id, UploadSession.project_id).where(
                UploadSession.id.in_(per_session)
            )
        )
        projects = {session_id: project_id for session_id, project_id in found}
        for session_id, count in sorted(per_session.items()):
            await audit.record(
                db,
                at=now,
                actor="keyguard",
                action="session.photos_deleted",
                target=session_id,
                project_id=projects.get(session_id),
                data={"count": count, "retention_days": days},
            )
    for _, storage_key in gone:
        await store.delete(storage_key)
    return len(gone)


class RetentionSweeper:
    """Runs :func:`prune` at start-up and every ``interval`` seconds after."""

    def __init__(self, ctx: ServiceContext, store: FileStore, *, interval: float = 3600.0) -> None:
        self._ctx = ctx
        self._store = store
        self._interval = interval

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[RetentionSweeper]:
        async with periodic(self._sweep, every=self._interval, name="retention sweep"):
            yield self

    async def _sweep(self) -> None:
        report = await prune(self._ctx, self._store)
        if report.webhook_messages or report.photos or report.usage_buckets:
            log.info(
                "retention removed %d webhook messages, %d photos and %d usage rows",
                report.webhook_messages,
                report.photos,
                report.usage_buckets,
            )
