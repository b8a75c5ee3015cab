"""Webhook endpoints of a project, their deliveries, and redelivery (CONTRACT §7)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from keyguard.audit import service as audit
from keyguard.clock import utc_from_ts
from keyguard.errors import NotFound, ValidationFailed
from keyguard.ids import new_id
from keyguard.projects.models import Project
from keyguard.uploads.models import UploadSession
from keyguard.webhooks.context import WebhookContext
from keyguard.webhooks.errors import (
    EndpointDisabled,
    WebhookUrlBlocked,
    WebhookUrlHttpsRequired,
    WebhookUrlInvalid,
)
from keyguard.webhooks.events import ALL_EVENTS, EVENT_TYPES, redact_url
from keyguard.webhooks.models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookMessage,
)
from keyguard.webhooks.outbox import CANCELLED, PENDING, mark_dirty, new_delivery
from keyguard.webhooks.ssrf import UnsafeWebhookUrl, validate_for_registration
from keyguard.webhooks.views import DeliveryView, EndpointView

MAX_ENDPOINTS_PER_PROJECT = 50
_URL_ERRORS = {
    "invalid_url": WebhookUrlInvalid,
    "https_required": WebhookUrlHttpsRequired,
    "ssrf_blocked": WebhookUrlBlocked,
}


async def check_webhook_url(ctx: WebhookContext, url: str) -> str:
    """The normalized URL, or a 422 with the SSRF guard's code. A host name is resolved
    and refused if any of its addresses is forbidden; a name that does not resolve yet
    (or not within a couple of seconds) is accepted and checked again at every send."""
    try:
        parsed = await validate_for_registration(
            url, ctx.settings.webhook_private_networks, resolver=ctx.webhook_resolver
        )
    except UnsafeWebhookUrl as exc:
        raise _URL_ERRORS[exc.code](exc.message) from None
    return parsed.url


def check_events(events: Sequence[str]) -> list[str]:
    unknown = sorted(set(events) - EVENT_TYPES - {ALL_EVENTS})
    if unknown:
        raise ValidationFailed(f"unknown event types: {', '.join(unknown)}")
    if not events:
        raise ValidationFailed("events must name at least one event type, or '*'")
    return sorted(set(events))


async def create_endpoint(
    ctx: WebhookContext,
    project_id: str,
    *,
    url: str,
    events: Sequence[str],
    description: str,
    actor: str,
) -> EndpointView:
    normalized = await check_webhook_url(ctx, url)
    wanted = check_events(events)
    now = utc_from_ts(ctx.clock.now())
    async with ctx.transaction() as db:
        if await db.get(Project, project_id) is None:
            raise NotFound()
        count = len(await _live_endpoints(db, project_id))
        if count >= MAX_ENDPOINTS_PER_PROJECT:
            raise ValidationFailed(f"a project has at most {MAX_ENDPOINTS_PER_PROJECT} endpoints")
        endpoint = WebhookEndpoint(
            id=new_id("whep"),
            project_id=project_id,
            url=normalized,
            events=wanted,
            description=description,
            enabled=True,
            created_at=now,
            updated_at=now,
        )
        db.add(endpoint)
        await db.flush()
        await audit.record(
            db,
            at=now,
            actor=actor,
            action="webhook.endpoint_created",
            target=endpoint.id,
            project_id=project_id,
            data={"url": redact_url(normalized), "events": wanted},
        )
    return EndpointView.of(endpoint)


async def _live_endpoints(db: AsyncSession, project_id: str) -> list[WebhookEndpoint]:
    rows = await db.execute(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.project_id == project_id, WebhookEndpoint.deleted_at.is_(None))
        .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
    )
    return list(rows.scalars())


async def list_endpoints(ctx: WebhookContext, project_id: str) -> list[EndpointView]:
    async with ctx.sessions() as db:
        if await db.get(Project, project_id) is None:
            raise NotFound()
        return [EndpointView.of(e) for e in await _live_endpoints(db, project_id)]


async def get_endpoint(ctx: WebhookContext, project_id: str, endpoint_id: str) -> EndpointView:
    async with ctx.sessions() as db:
        endpoint = await db.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.project_id != project_id or endpoint.deleted_at is not None:
        raise NotFound()
    return EndpointView.of(endpoint)


async def delete_endpoint(
    ctx: WebhookContext, project_id: str, endpoint_id: str, *, actor: str
) -> None:
    """Soft delete (deliveries keep their history); what still waits is cancelled."""
    now = utc_from_ts(ctx.clock.now())
    async with ctx.transaction() as db:
        endpoint = await db.get(WebhookEndpoint, endpoint_id, with_for_update=True)
        if endpoint is None or endpoint.project_id != project_id or endpoint.deleted_at:
            raise NotFound()
        endpoint.deleted_at = endpoint.updated_at = now
        endpoint.enabled = False
        await _cancel_pending(db, endpoint_id, now)
        await audit.record(
            db,
            at=now,
            actor=actor,
            action="webhook.endpoint_deleted",
            target=endpoint_id,
            project_id=project_id,
        )


async def enable_endpoint(
    ctx: WebhookContext, project_id: str, endpoint_id: str, *, actor: str
) -> EndpointView:
    """Turn a disabled endpoint back on (new events only; cancelled ones can be
    redelivered one by one)."""
    now = utc_from_ts(ctx.clock.now())
    async with ctx.transaction() as db:
        endpoint = await db.get(WebhookEndpoint, endpoint_id, with_for_update=True)
        if endpoint is None or endpoint.project_id != project_id or endpoint.deleted_at:
            raise NotFound()
        if not endpoint.enabled:
            endpoint.enabled = True
            endpoint.disabled_reason = None
            endpoint.disabled_at = None
            endpoint.failing_since = None
            endpoint.updated_at = now
            await audit.record(
                db,
                at=now,
                actor=actor,
                action="webhook.endpoint_enabled",
                target=endpoint_id,
                project_id=project_id,
            )
    return EndpointView.of(endpoint)


async def update_endpoint(
    ctx: WebhookContext,
    project_id: str,
    endpoint_id: str,
    *,
    events: Sequence[str] | None = None,
    description: str | None = None,
    actor: str,
) -> EndpointView:
    """Change an endpoint's events and/or description (the URL stays: a new receiver
    is a new endpoint). Audited once, and only when something changed."""
    wanted = None if events is None else check_events(events)
    now = utc_from_ts(ctx.clock.now())
    async with ctx.transaction() as db:
        endpoint = await db.get(WebhookEndpoint, endpoint_id, with_for_update=True)
        if endpoint is None or endpoint.project_id != project_id or endpoint.deleted_at:
            raise NotFound()
        changed: dict[str, object] = {}
        if wanted is not None and wanted != sorted(endpoint.events):
            endpoint.events = wanted
            changed["events"] = wanted
        if description is not None and description != endpoint.description:
            endpoint.description = description
            changed["description"] = True  # the text itself stays out of the audit log
        if changed:
            endpoint.updated_at = now
            await audit.record(
                db,
                at=now,
                actor=actor,
                action="webhook.endpoint_updated",
                target=endpoint_id,
                project_id=project_id,
                data={
                    "fields": sorted(changed),
                    **({"events": wanted} if "events" in changed else {}),
                },
            )
    return EndpointView.of(endpoint)


async def disable_endpoint(
    ctx: WebhookContext, project_id: str, endpoint_id: str, *, actor: str
) -> EndpointView:
    """Turn an endpoint off by hand (reason ``manual``): nothing more is sent to it and
    what waits for it is cancelled; :func:`enable_endpoint` turns it back on."""
    now = utc_from_ts(ctx.clock.now())
    async with ctx.transaction() as db:
        endpoint = await db.get(WebhookEndpoint, endpoint_id, with_for_update=True)
        if endpoint is None or endpoint.project_id != project_id or endpoint.deleted_at:
            raise NotFound()
        if endpoint.enabled:
            endpoint.enabled = False
            endpoint.disabled_reason = "manual"
            endpoint.disabled_at = endpoint.updated_at = now
            await _cancel_pending(db, endpoint_id, now)
            await audit.record(
                db,
                at=now,
                actor=actor,
                action="webhook.endpoint_disabled_manually",
                target=endpoint_id,
                project_id=project_id,
                data={"url": redact_url(endpoint.url)},
            )
    return EndpointView.of(endpoint)


async def _cancel_pending(db: AsyncSession, endpoint_id: str, now: datetime) -> None:
    await db.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.status == PENDING)
        .values(status=CANCELLED, claimed_until=None, claim_token=None, updated_at=now)
    )


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a delivery goes: a registered endpoint, or an upload session's own
    ``webhook_url`` (``photo.uploaded``). Exactly one of the two ids is set."""

    endpoint_id: str | None = None
    session_id: str | None = None

    @classmethod
    def endpoint(cls, endpoint_id: str) -> Destination:
        return cls(endpoint_id=endpoint_id)

    @classmethod
    def session(cls, session_id: str) -> Destination:
        return cls(session_id=session_id)

    def owns(self) -> ColumnElement[bool]:
        """The WHERE clause selecting this destination's deliveries."""
        if self.endpoint_id is not None:
            return WebhookDelivery.endpoint_id == self.endpoint_id
        return (WebhookDelivery.session_id == self.session_id) & (
            WebhookDelivery.endpoint_id.is_(None)
        )

    def owns_row(self, delivery: WebhookDelivery) -> bool:
        if self.endpoint_id is not None:
            return delivery.endpoint_id == self.endpoint_id
        return delivery.endpoint_id is None and delivery.session_id == self.session_id


@dataclass(frozen=True, slots=True)
class _Target:
    url: str
    destination: str  # what the per-destination concurrency cap counts
    enabled: bool


async def _target(db: AsyncSession, project_id: str, dest: Destination) -> _Target:
    """Where ``dest`` of ``project_id`` sends; 404 when it does not exist there
    (another project's destination is answered the same)."""
    if dest.endpoint_id is not None:
        endpoint = await db.get(WebhookEndpoint, dest.endpoint_id)
        if endpoint is None or endpoint.project_id != project_id or endpoint.deleted_at:
            raise NotFound()
        return _Target(endpoint.url, endpoint.id, endpoint.enabled)
    upload = await db.get(UploadSession, dest.session_id) if dest.session_id else None
    if upload is None or upload.project_id != project_id:
        raise NotFound()
    # Expiry ends uploads, not the delivery of what was uploaded: history and
    # redelivery stay available. A poll-mode session simply has no deliveries.
    return _Target(upload.webhook_url or "", upload.id, True)


async def destination_deliveries(
    ctx: WebhookContext, project_id: str, dest: Destination, *, limit: int = 50
) -> list[DeliveryView]:
    """A destination's latest deliveries, newest first, each with all its attempts."""
    async with ctx.sessions() as db:
        await _target(db, project_id, dest)
        return await _deliveries(db, dest.owns(), limit)


async def endpoints_deliveries(
    ctx: WebhookContext, project_id: str, endpoint_ids: Sequence[str], *, limit: int = 50
) -> list[DeliveryView]:
    """The latest deliveries to any of these endpoints of the project, newest first, in
    one query (the dashboard's project-wide log)."""
    if not endpoint_ids:
        return []
    async with ctx.sessions() as db:
        mine = and_(
            WebhookDelivery.endpoint_id.in_(list(endpoint_ids)),
            WebhookMessage.project_id == project_id,
        )
        return await _deliveries(db, mine, limit)


async def _deliveries(
    db: AsyncSession, condition: ColumnElement[bool], limit: int
) -> list[DeliveryView]:
    rows = (
        await db.execute(
            select(WebhookDelivery, WebhookMessage.event_type)
            .join(WebhookMessage, WebhookMessage.id == WebhookDelivery.message_id)
            .where(condition)
            .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
            .limit(limit)
        )
    ).all()
    ids = [d.id for d, _ in rows]
    attempts: dict[str, list[WebhookAttempt]] = {i: [] for i in ids}
    if ids:
        found = await db.execute(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(ids))
            .order_by(WebhookAttempt.attempt_number, WebhookAttempt.id)
        )
        for attempt in found.scalars():
            attempts[attempt.delivery_id].append(attempt)
    return [DeliveryView.of(d, event_type, attempts[d.id]) for d, event_type in rows]


async def list_deliveries(
    ctx: WebhookContext, project_id: str, endpoint_id: str, *, limit: int = 50
) -> list[DeliveryView]:
    """The endpoint's latest deliveries, newest first, each with all its attempts."""
    return await destination_deliveries(
        ctx, project_id, Destination.endpoint(endpoint_id), limit=limit
    )


async def redeliver_to(
    ctx: WebhookContext, project_id: str, dest: Destination, delivery_id: str, *, actor: str
) -> DeliveryView:
    """A new delivery of the same message (same ``webhook-id``) to the same
    destination, with a fresh retry schedule, sent as soon as the worker sees it."""
    now = utc_from_ts(ctx.clock.now())
    async with ctx.transaction() as db:
        target = await _target(db, project_id, dest)
        old = await db.get(WebhookDelivery, delivery_id)
        if old is None or not dest.owns_row(old):
            raise NotFound()
        if not target.enabled:
            raise EndpointDisabled("enable the endpoint before redelivering to it")
        # Key-share lock (PostgreSQL): the retention sweep either skips this message or
        # has deleted it by the time we get it (then 404, not a foreign-key error).
        message = await db.get(WebhookMessage, old.message_id, with_for_update={"key_share": True})
        if message is None or message.project_id != project_id:
            raise NotFound()
        fresh = new_delivery(
            message.id, dest.endpoint_id, dest.session_id, target.url, target.destination, now
        )
        db.add(fresh)
        mark_dirty(db)
        await db.flush()
        await audit.record(
            db,
            at=now,
            actor=actor,
            action="webhook.redelivered",
            target=fresh.id,
            project_id=project_id,
            data={"delivery_id": delivery_id, "message_id": message.id},
        )
        event_type = message.event_type
    return DeliveryView.of(fresh, event_type, [])


async def redeliver(
    ctx: WebhookContext, project_id: str, endpoint_id: str, delivery_id: str, *, actor: str
) -> DeliveryView:
    """:func:`redeliver_to` a registered endpoint (409 while it is disabled)."""
    return await redeliver_to(
        ctx, project_id, Destination.endpoint(endpoint_id), delivery_id, actor=actor
    )


__all__ = [
    "Destination",
    "check_events",
    "check_webhook_url",
    "create_endpoint",
    "delete_endpoint",
    "destination_deliveries",
    "disable_endpoint",
    "enable_endpoint",
    "get_endpoint",
    "list_deliveries",
    "list_endpoints",
    "redeliver",
    "redeliver_to",
    "update_endpoint",
]
