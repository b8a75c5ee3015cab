"""Claiming due deliveries, building what to send, and recording each attempt.

Claims are leases: ``claimed_until`` (plus a ``claim_token``) marks a delivery as taken.
On PostgreSQL candidates are selected ``FOR UPDATE SKIP LOCKED`` so concurrent workers
(several instances) never pick the same row; on SQLite the single writer takes them with
a conditional UPDATE. A worker that dies (kill -9) simply lets its leases expire, and the
next claim picks those deliveries up again: at-least-once, never lost.
"""

from __future__ import annotations

import json
import random
import secrets
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import structlog
from sqlalchemy import Table, bindparam, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from keyguard.audit import service as audit
from keyguard.clock import utc_from_ts
from keyguard.projects.models import Project
from keyguard.projects.service import active_webhook_secrets
from keyguard.uploads.links import sign_download_link
from keyguard.webhooks.attempt import INTERNAL_ERROR, RESPONSE_TRUNCATED, AttemptResult
from keyguard.webhooks.context import WebhookContext
from keyguard.webhooks.events import PHOTO_UPLOADED, redact_url
from keyguard.webhooks.models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookMessage,
)
from keyguard.webhooks.outbox import CANCELLED, FAILED, PENDING, SUCCEEDED
from keyguard.webhooks.schedule import is_retryable, next_attempt_delay, should_disable_endpoint
from keyguard.webhooks.signing import signature_headers

log = structlog.get_logger("keyguard.webhooks")

# Batch writes go through Core: the ORM's bulk paths compile their statement each time.
_ATTEMPTS = cast(Table, WebhookAttempt.__table__)
_DELIVERIES = cast(Table, WebhookDelivery.__table__)
# Svix: an endpoint whose every attempt has failed for 5 days is disabled.
DISABLE_AFTER = timedelta(days=5)
STORED_EXCERPT_CHARS = 1024


@dataclass(frozen=True, slots=True)
class MessageContent:
    """What the body of an attempt is made of (see :func:`render_body`)."""

    id: str
    event_type: str
    payload: str
    created_at: datetime


@dataclass(frozen=True, slots=True, repr=False)
class ClaimedDelivery:
    """A claimed delivery with everything its attempt needs, read in the claim itself.

    The project's secrets stay sealed here; :func:`prepare_many` opens them once per
    project and batch.
    """

    token: str | None
    endpoint_id: str | None
    url: str
    attempt_count: int
    message: MessageContent
    project_id: str
    secret_sealed: str
    previous_secret_sealed: str | None
    previous_secret_until: datetime | None
    endpoint_live: bool  # no endpoint (upload session URL), or enabled and not deleted


@dataclass(frozen=True, slots=True)
class Claim:
    delivery_id: str
    destination: str
    token: str
    # Read in the claim's own transaction, so an attempt needs no further read.
    delivery: ClaimedDelivery | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True, repr=False)
class Job:
    """Everything one attempt needs; ``headers`` hold signatures, so no repr."""

    claim: Claim
    endpoint_id: str | None
    url: str
    body: bytes
    headers: dict[str, str]
    attempt_number: int
    started_at: float


def _due(now: datetime, *, by_primary_key: bool = False) -> Any:
    # by_primary_key: re-checking rows already chosen by id. Then status is wrapped so
    # the planner cannot use the (status, next_attempt_at) index: SQLite picked it over
    # the primary key and walked every pending delivery to update a few.
    status = func.coalesce(WebhookDelivery.status, "") if by_primary_key else WebhookDelivery.status
    return (
        (status == PENDING)
        & (WebhookDelivery.next_attempt_at <= now)
        & or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until <= now)
    )


async def any_due(ctx: WebhookContext) -> bool:
    """A cheap read, so an idle worker does not take SQLite's write lock to find nothing."""
    now = utc_from_ts(ctx.clock.now())
    async with ctx.sessions() as session:
        found = await session.execute(select(WebhookDelivery.id).where(_due(now)).limit(1))
        return found.first() is not None


async def claim_due(
    ctx: WebhookContext,
    *,
    limit: int,
    in_flight: Mapping[str, int],
    per_destination: int,
    lease_seconds: float,
) -> list[Claim]:
    """Lease up to ``limit`` due deliveries, at most ``per_destination`` in flight for
    any one destination (counting ``in_flight``), oldest first."""
    if limit <= 0:
        return []
    async with ctx.transaction() as session:
        return await _claim_in(
            session,
            ctx.clock.now(),
            limit=limit,
            in_flight=in_flight,
            per_destination=per_destination,
            lease_seconds=lease_seconds,
        )


async def record_and_claim(
    ctx: WebhookContext,
    outcomes: Sequence[tuple[Job, AttemptResult]],
    rng: random.Random,
    *,
    limit: int,
    in_flight: Mapping[str, int],
    per_destination: int,
    lease_seconds: float,
) -> list[Claim]:
    """:func:`finish_many` then :func:`claim_due`, in one transaction: the worker's
    round. On SQLite, one writer lock and one commit where two would queue behind each
    other; all or nothing, like each half."""
    async with ctx.transaction() as session:
        now_ts = ctx.clock.now()
        await _finish_in(session, outcomes, rng, utc_from_ts(now_ts))
        if limit <= 0:
            return []
        return await _claim_in(
            session,
            now_ts,
            limit=limit,
            in_flight=in_flight,
            per_destination=per_destination,
            lease_seconds=lease_seconds,
        )


async def _claim_in(
    session: AsyncSession,
    now_ts: float,
    *,
    limit: int,
    in_flight: Mapping[str, int],
    per_destination: int,
    lease_seconds: float,
) -> list[Claim]:
    now = utc_from_ts(now_ts)
    saturated: Collection[str] = [d for d, n in in_flight.items() if n >= per_destination]
    query = select(WebhookDelivery.id, WebhookDelivery.destination).where(_due(now))
    if saturated:
        query = query.where(WebhookDelivery.destination.not_in(saturated))
    query = query.order_by(WebhookDelivery.next_attempt_at).limit(limit * 4)
    counts = dict(in_flight)
    chosen: list[str] = []
    for delivery_id, destination in (await session.execute(query)).all():
        if counts.get(destination, 0) >= per_destination:
            continue
        counts[destination] = counts.get(destination, 0) + 1
        chosen.append(delivery_id)
        if len(chosen) == limit:
            break
    if not chosen:
        return []
    if _dialect(session) == "postgresql":
        # Lock only the chosen rows; rows another worker holds are skipped, and the
        # lock re-checks "still due" against the latest committed version.
        locked = await session.execute(
            select(WebhookDelivery.id)
            .where(WebhookDelivery.id.in_(chosen), _due(now))
            .with_for_update(skip_locked=True)
        )
        chosen = list(locked.scalars())
        if not chosen:
            return []
    token = secrets.token_hex(12)
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id.in_(chosen), _due(now, by_primary_key=True))
        .values(claimed_until=utc_from_ts(now_ts + lease_seconds), claim_token=token)
    )
    # What each attempt needs (delivery, message, project secrets, endpoint state)
    # in the same statement that reads back what was claimed.
    # By primary key (claim_token has no index), keeping only the rows this claim took.
    claimed = await session.execute(
        _claimed_delivery_query().where(
            WebhookDelivery.id.in_(chosen), WebhookDelivery.claim_token == token
        )
    )
    return [Claim(row.id, row.destination, token, _claimed_delivery(row)) for row in claimed.all()]


def _claimed_delivery_query() -> Any:
    return (
        select(
            WebhookDelivery.id,
            WebhookDelivery.destination,
            WebhookDelivery.claim_token,
            WebhookDelivery.endpoint_id,
            WebhookDelivery.url,
            WebhookDelivery.attempt_count,
            WebhookMessage.id.label("message_id"),
            WebhookMessage.event_type,
            WebhookMessage.payload,
            WebhookMessage.created_at,
            Project.id.label("project_id"),
            Project.webhook_secret_sealed,
            Project.previous_webhook_secret_sealed,
            Project.previous_webhook_secret_until,
            WebhookEndpoint.id.label("live_endpoint_id"),
            WebhookEndpoint.enabled,
            WebhookEndpoint.deleted_at,
        )
        .join(WebhookMessage, WebhookMessage.id == WebhookDelivery.message_id)
        .join(Project, Project.id == WebhookMessage.project_id)
        .outerjoin(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
    )


def _claimed_delivery(row: Any) -> ClaimedDelivery:
    live = row.endpoint_id is None or (
        row.live_endpoint_id is not None and bool(row.enabled) and row.deleted_at is None
    )
    return ClaimedDelivery(
        token=row.claim_token,
        endpoint_id=row.endpoint_id,
        url=row.url,
        attempt_count=row.attempt_count,
        message=MessageContent(row.message_id, row.event_type, row.payload, row.created_at),
        project_id=row.project_id,
        secret_sealed=row.webhook_secret_sealed,
        previous_secret_sealed=row.previous_webhook_secret_sealed,
        previous_secret_until=row.previous_webhook_secret_until,
        endpoint_live=live,
    )


async def prepare(ctx: WebhookContext, claim: Claim) -> Job | None:
    """The signed request for a claimed delivery, or None when it must not be sent
    (lease lost, endpoint deleted or disabled: then the delivery is cancelled).

    Always reads the delivery again (whatever the claim carries), so a lease lost since
    the claim is noticed."""
    return (await prepare_many(ctx, [claim], reload=True))[0]


async def prepare_many(
    ctx: WebhookContext,
    claims: Sequence[Claim],
    *,
    reload: bool = False,
    rng: random.Random | None = None,
) -> list[Job | None]:
    """:func:`prepare` for a batch: claims that carry what they need (fresh from
    :func:`claim_due`) cost no read, the others one read for all; each project's
    secrets are opened once; deliveries of dead endpoints are cancelled together.

    A delivery that cannot be prepared (a sealed secret that does not open, a payload
    that does not render) gets a recorded ``internal_error`` attempt and follows the
    normal retry schedule (``rng`` jitters it), so it ends as failed instead of being
    claimed again forever; the rest of the batch is not affected.
    """
    now_ts = ctx.clock.now()
    now = utc_from_ts(now_ts)
    reloaded: dict[str, ClaimedDelivery] = {}
    missing = [c.delivery_id for c in claims if reload or c.delivery is None]
    if missing:
        async with ctx.sessions() as session:
            rows = await session.execute(
                _claimed_delivery_query().where(WebhookDelivery.id.in_(missing))
            )
            reloaded = {row.id: _claimed_delivery(row) for row in rows.all()}
    secrets_of: dict[str, list[str] | None] = {}  # None: the project's secrets do not open
    jobs: list[Job | None] = []
    dead: list[Claim] = []
    broken: list[Job] = []
    for claim in claims:
        row = (
            reloaded.get(claim.delivery_id) if reload or claim.delivery is None else claim.delivery
        )
        if row is None or row.token != claim.token:
            jobs.append(None)
            continue
        if not row.endpoint_live:
            dead.append(claim)
            jobs.append(None)
            continue
        attempt_number = row.attempt_count + 1
        try:
            if row.project_id not in secrets_of:
                secrets_of[row.project_id] = None
                secrets_of[row.project_id] = _secrets(ctx, row, now)
            active = secrets_of[row.project_id]
            if active is None:
                raise RuntimeError("the project's webhook secrets did not open")
            body = render_body(ctx, row.message, now_ts)
            headers = signature_headers(
                active, row.message.id, int(now_ts), body, ctx.settings.header_prefix
            )
        except Exception as exc:
            # The type only: the message of a crypto or JSON error is nobody's business.
            log.error(
                "webhook_prepare_failed",
                delivery_id=claim.delivery_id,
                project_id=row.project_id,
                error_type=type(exc).__name__,
            )
            broken.append(Job(claim, row.endpoint_id, row.url, b"", {}, attempt_number, now_ts))
            jobs.append(None)
            continue
        jobs.append(Job(claim, row.endpoint_id, row.url, body, headers, attempt_number, now_ts))
    if dead:
        await _cancel(ctx, dead)
    if broken:
        try:
            await finish_many(
                ctx,
                [(job, _internal_error(job.url)) for job in broken],
                rng or random.SystemRandom(),
            )
        except Exception as exc:  # their leases expire and a later round tries again
            log.error("webhook_prepare_record_failed", error_type=type(exc).__name__)
    return jobs


def _internal_error(url: str) -> AttemptResult:
    # Nothing was sent: no status, no latency, no response.
    return AttemptResult(url, None, 0.0, "", INTERNAL_ERROR, None)


def _secrets(ctx: WebhookContext, row: ClaimedDelivery, now: datetime) -> list[str]:
    # A transient Project (never added to a session) with just what signing reads.
    project = Project(
        id=row.project_id,
        webhook_secret_sealed=row.secret_sealed,
        previous_webhook_secret_sealed=row.previous_secret_sealed,
        previous_webhook_secret_until=row.previous_secret_until,
    )
    return active_webhook_secrets(ctx.envelope, project, now)


def render_body(ctx: WebhookContext, message: WebhookMessage | MessageContent, now: float) -> bytes:
    """The JSON body of one attempt: ``{id, type, timestamp, data}``.

    ``photo.uploaded`` gets a freshly signed download link per attempt, so a retry
    hours later still carries a link that works (each valid for an hour).
    """
    data: dict[str, Any] = json.loads(message.payload)
    if message.event_type == PHOTO_UPLOADED and isinstance(data.get("download_url"), str):
        url, expires = sign_download_link(
            ctx.link_key, data["download_url"], data["photo"]["id"], now=now
        )
        data["download_url"] = url
        data["download_url_expires_at"] = utc_from_ts(expires).isoformat().replace("+00:00", "Z")
    envelope = {
        "id": message.id,
        "type": message.event_type,
        "timestamp": message.created_at.isoformat().replace("+00:00", "Z"),
        "data": data,
    }
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()


async def finish_many(
    ctx: WebhookContext, outcomes: Sequence[tuple[Job, AttemptResult]], rng: random.Random
) -> None:
    """Record attempts and decide what comes next for each: done, retry at a time, or
    give up. One transaction for the lot: on SQLite, one writer lock and one commit for
    a batch of results instead of one per delivery.

    The attempt is always recorded (it happened); a delivery is only updated while this
    worker still holds its lease.
    """
    if outcomes:
        async with ctx.transaction() as session:
            await _finish_in(session, outcomes, rng, utc_from_ts(ctx.clock.now()))


async def _finish_in(
    session: AsyncSession,
    outcomes: Sequence[tuple[Job, AttemptResult]],
    rng: random.Random,
    now: datetime,
) -> None:
    if not outcomes:
        return
    # One global lock order -- the endpoints, then the deliveries, each sorted -- as
    # disable_endpoint() also takes endpoint then deliveries: no deadlocks on PostgreSQL
    # (SQLite has one writer and no row locks).
    endpoint_ids = sorted({job.endpoint_id for job, _ in outcomes if job.endpoint_id})
    if endpoint_ids and _dialect(session) == "postgresql":
        await session.execute(
            select(WebhookEndpoint.id)
            .where(WebhookEndpoint.id.in_(endpoint_ids))
            .order_by(WebhookEndpoint.id)
            .with_for_update()
        )
    locked = await session.execute(
        select(WebhookDelivery.id, WebhookDelivery.claim_token, WebhookDelivery.status)
        .where(WebhookDelivery.id.in_(sorted({job.claim.delivery_id for job, _ in outcomes})))
        .order_by(WebhookDelivery.id)
        .with_for_update()
    )
    current = {row.id: (row.claim_token, row.status) for row in locked}
    # A delivery whose lease expired belongs to whoever claimed it since: only its
    # attempt is recorded here.
    held = [
        o for o in outcomes if current.get(o[0].claim.delivery_id) == (o[0].claim.token, PENDING)
    ]
    # Successes first: they are done whatever a failure below does to their endpoint
    # (a 410 disables it and cancels what still waits for it).
    successes = [job for job, result in held if result.success]
    if successes:
        await _succeed(session, successes, now)
    failures = [o for o in held if not o[1].success]
    if failures:
        await _decide(session, failures, rng, now)
    attempts = [
        _attempt_row(job, result) for job, result in outcomes if job.claim.delivery_id in current
    ]
    if attempts:
        # One Core statement for the batch: through the ORM each row is its own INSERT,
        # to read back an id nobody here needs.
        await session.execute(insert(_ATTEMPTS), attempts)
    # Written now, so a claim later in the same transaction sees these rows as they are.
    await session.flush()


async def _succeed(session: AsyncSession, jobs: Sequence[Job], now: datetime) -> None:
    """Mark deliveries done and end their endpoints' failing streaks: nothing to decide,
    so no row is loaded; one statement for all."""
    await session.execute(
        update(_DELIVERIES)
        .where(
            _DELIVERIES.c.id == bindparam("b_id"),
            _DELIVERIES.c.claim_token == bindparam("b_token"),
        )
        .values(
            status=SUCCEEDED,
            attempt_count=bindparam("b_attempt"),
            claimed_until=None,
            claim_token=None,
            updated_at=now,
            last_error=None,
        ),
        [
            {
                "b_id": job.claim.delivery_id,
                "b_token": job.claim.token,
                "b_attempt": job.attempt_number,
            }
            for job in jobs
        ],
    )
    endpoint_ids = sorted({job.endpoint_id for job in jobs if job.endpoint_id})
    if endpoint_ids:
        await session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id.in_(endpoint_ids), WebhookEndpoint.failing_since.is_not(None))
            .values(failing_since=None)
        )


async def _decide(
    session: AsyncSession,
    failures: Sequence[tuple[Job, AttemptResult]],
    rng: random.Random,
    now: datetime,
) -> None:
    """Retry later, give up, or disable the endpoint, for attempts that failed (rows
    already locked by the caller)."""
    endpoint_ids = sorted({job.endpoint_id for job, _ in failures if job.endpoint_id})
    endpoints: dict[str, WebhookEndpoint] = {}
    if endpoint_ids:
        found = await session.execute(
            select(WebhookEndpoint).where(WebhookEndpoint.id.in_(endpoint_ids))
        )
        endpoints = {e.id: e for e in found.scalars()}
    found_deliveries = await session.execute(
        select(WebhookDelivery).where(
            WebhookDelivery.id.in_([job.claim.delivery_id for job, _ in failures])
        )
    )
    deliveries = {d.id: d for d in found_deliveries.scalars()}
    for job, result in sorted(
        failures, key=lambda o: (o[0].endpoint_id or "", o[0].claim.delivery_id)
    ):
        endpoint = endpoints.get(job.endpoint_id) if job.endpoint_id else None
        await _fail(session, job, result, rng, now, endpoint, deliveries[job.claim.delivery_id])


def _attempt_row(job: Job, result: AttemptResult) -> dict[str, Any]:
    return {
        "delivery_id": job.claim.delivery_id,
        "attempt_number": job.attempt_number,
        "at": utc_from_ts(job.started_at),
        "status_code": result.status_code,
        "latency_ms": round(result.latency_ms, 3),
        "response_excerpt": result.response_excerpt[:STORED_EXCERPT_CHARS],
        "error": result.error,
    }


async def _fail(
    session: AsyncSession,
    job: Job,
    result: AttemptResult,
    rng: random.Random,
    now: datetime,
    endpoint: WebhookEndpoint | None,
    delivery: WebhookDelivery,
) -> None:
    """Decide what comes next for one failed attempt of a delivery still held (its
    attempt row is the caller's)."""
    delivery.attempt_count = job.attempt_number
    delivery.claimed_until = None
    delivery.claim_token = None
    delivery.updated_at = now
    delivery.last_error = _error_code(result)
    delay = (
        next_attempt_delay(job.attempt_number, retry_after=result.retry_after, rng=rng)
        if is_retryable(result)
        else None
    )
    if delay is None:
        delivery.status = FAILED
    else:
        delivery.next_attempt_at = now + timedelta(seconds=delay)
    # Keyguard's own failure says nothing about the receiver: it never counts towards
    # disabling the endpoint.
    if endpoint is not None and endpoint.enabled and result.error != INTERNAL_ERROR:
        if endpoint.failing_since is None:
            endpoint.failing_since = utc_from_ts(job.started_at)
        if should_disable_endpoint(result):
            await disable_endpoint(session, endpoint, "gone", now, keep=delivery.id)
            delivery.status = FAILED
        elif now - endpoint.failing_since >= DISABLE_AFTER:
            await disable_endpoint(session, endpoint, "failing", now, keep=delivery.id)
            delivery.status = FAILED


def _error_code(result: AttemptResult) -> str | None:
    if result.success:
        return None
    # A cut body only annotates an answer: the delivery failed because of its status.
    if result.error and result.error != RESPONSE_TRUNCATED:
        return result.error
    return f"http_{result.status_code}"


async def disable_endpoint(
    session: AsyncSession, endpoint: WebhookEndpoint, reason: str, now: datetime, *, keep: str
) -> None:
    """Turn an endpoint off, cancel what waits for it, and tell the owner.

    The owner hears through the audit log, a log line and an ``endpoint.disabled``
    event to the project's other endpoints (the audit hook enqueues it).
    """
    endpoint.enabled = False
    endpoint.disabled_reason = reason
    endpoint.disabled_at = now
    endpoint.updated_at = now
    await session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.endpoint_id == endpoint.id,
            WebhookDelivery.status == PENDING,
            WebhookDelivery.id != keep,
        )
        .values(status=CANCELLED, claimed_until=None, claim_token=None, updated_at=now)
    )
    await session.flush()
    log.warning(
        "webhook_endpoint_disabled",
        endpoint_id=endpoint.id,
        project_id=endpoint.project_id,
        reason=reason,
    )
    await audit.record(
        session,
        at=now,
        actor="keyguard",
        action="webhook.endpoint_disabled",
        target=endpoint.id,
        project_id=endpoint.project_id,
        # The audit log is append-only: never the full URL, which may carry a token.
        data={"reason": reason, "url": redact_url(endpoint.url)},
    )


async def _cancel(ctx: WebhookContext, claims: Collection[Claim]) -> None:
    now = utc_from_ts(ctx.clock.now())
    async with ctx.transaction() as session:
        for claim in claims:
            await session.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.id == claim.delivery_id,
                    WebhookDelivery.claim_token == claim.token,
                )
                .values(status=CANCELLED, claimed_until=None, claim_token=None, updated_at=now)
            )


async def release(ctx: WebhookContext, claims: Collection[Claim]) -> None:
    """Give leases back (clean shutdown), so another worker need not wait for expiry."""
    async with ctx.transaction() as session:
        for claim in claims:
            await session.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.id == claim.delivery_id,
                    WebhookDelivery.claim_token == claim.token,
                )
                .values(claimed_until=None, claim_token=None)
            )


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


__all__ = [
    "DISABLE_AFTER",
    "Claim",
    "ClaimedDelivery",
    "Job",
    "MessageContent",
    "any_due",
    "claim_due",
    "disable_endpoint",
    "finish_many",
    "prepare",
    "prepare_many",
    "record_and_claim",
    "release",
    "render_body",
]
