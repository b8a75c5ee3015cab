"""The durable outbox: events are written here in the transaction that caused them.

One :class:`WebhookMessage` per event (its id is the ``webhook-id`` header, stable
across retries) and one :class:`WebhookDelivery` per destination: every enabled
endpoint of the project subscribed to the event type, plus the upload session's own
``webhook_url`` for ``photo.uploaded``. The worker claims deliveries from there.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from keyguard.ids import new_id
from keyguard.uploads.models import UploadSession
from keyguard.webhooks.context import WebhookContext
from keyguard.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookMessage

PENDING = "pending"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"

_DIRTY = "keyguard.outbox_dirty"
_wakers: set[Callable[[], None]] = set()


def subscribed(events: list[str], event_type: str) -> bool:
    return "*" in events or event_type in events


def dump_payload(data: dict[str, Any]) -> str:
    # Compact and ASCII-only: the stored text is the byte-exact payload every retry sends.
    return json.dumps(data, separators=(",", ":"), sort_keys=True, ensure_ascii=True)


async def enqueue(
    db: AsyncSession,
    *,
    project_id: str,
    event_type: str,
    data: dict[str, Any],
    at: datetime,
    upload_session: UploadSession | None = None,
    explicit_only: bool = False,
) -> WebhookMessage | None:
    """Write one event and its deliveries in the caller's transaction.

    Returns None (and writes nothing) when no destination wants the event.
    ``explicit_only``: endpoints subscribed to ``*`` do not count (events about the whole
    installation, not the project, go only where they were asked for by name).
    """
    endpoints = (
        await db.execute(
            select(WebhookEndpoint).where(
                WebhookEndpoint.project_id == project_id,
                WebhookEndpoint.enabled.is_(True),
                WebhookEndpoint.deleted_at.is_(None),
            )
        )
    ).scalars()
    targets: list[tuple[str | None, str | None, str, str]] = [
        (e.id, None, e.url, e.id)
        for e in endpoints
        if (event_type in e.events if explicit_only else subscribed(list(e.events), event_type))
    ]
    if upload_session is not None and upload_session.webhook_url:
        s = upload_session
        targets.append((None, s.id, s.webhook_url or "", s.id))
    if not targets:
        return None
    message = WebhookMessage(
        id=new_id("msg"),
        project_id=project_id,
        event_type=event_type,
        payload=dump_payload(data),
        created_at=at,
    )
    db.add(message)
    await db.flush()  # the deliveries' foreign key needs the message row first
    for endpoint_id, session_id, url, destination in targets:
        db.add(new_delivery(message.id, endpoint_id, session_id, url, destination, at))
    db.info[_DIRTY] = True
    await db.flush()
    return message


def new_delivery(
    message_id: str,
    endpoint_id: str | None,
    session_id: str | None,
    url: str,
    destination: str,
    at: datetime,
) -> WebhookDelivery:
    return WebhookDelivery(
        id=new_id("whdl"),
        message_id=message_id,
        endpoint_id=endpoint_id,
        session_id=session_id,
        url=url,
        destination=destination,
        status=PENDING,
        attempt_count=0,
        next_attempt_at=at,
        created_at=at,
        updated_at=at,
    )


def mark_dirty(db: AsyncSession) -> None:
    """Wake the in-process worker when this transaction commits."""
    db.info[_DIRTY] = True


def add_waker(wake: Callable[[], None]) -> None:
    """Call ``wake`` after every commit that wrote to the outbox (in this process)."""
    _wakers.add(wake)


def remove_waker(wake: Callable[[], None]) -> None:
    _wakers.discard(wake)


@event.listens_for(Session, "after_commit")
def _after_commit(db: Session) -> None:
    if db.info.pop(_DIRTY, False):
        for wake in list(_wakers):
            wake()


@event.listens_for(Session, "after_rollback")
def _after_rollback(db: Session) -> None:
    db.info.pop(_DIRTY, None)


@dataclass(frozen=True, slots=True)
class OutboxDepth:
    """Deliveries waiting (retries included) and the age of the oldest (GET /metrics)."""

    pending: int
    oldest_age_seconds: float


async def outbox_depth(ctx: WebhookContext) -> OutboxDepth:
    async with ctx.sessions() as db:
        pending, oldest = (
            await db.execute(
                select(func.count(), func.min(WebhookDelivery.created_at)).where(
                    WebhookDelivery.status == PENDING
                )
            )
        ).one()
    age = 0.0 if oldest is None else max(0.0, ctx.clock.now() - oldest.timestamp())
    return OutboxDepth(int(pending), age)


__all__ = [
    "CANCELLED",
    "FAILED",
    "PENDING",
    "SUCCEEDED",
    "OutboxDepth",
    "add_waker",
    "dump_payload",
    "enqueue",
    "mark_dirty",
    "new_delivery",
    "outbox_depth",
    "remove_waker",
    "subscribed",
]
