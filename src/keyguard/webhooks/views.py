"""What the webhook services hand the edges: frozen views, never ORM rows."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, cast

from keyguard.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from keyguard.webhooks.outbox import PENDING

DisabledReason = Literal["gone", "failing", "manual"]
DeliveryStatus = Literal["pending", "succeeded", "failed", "cancelled"]


@dataclass(frozen=True, slots=True)
class EndpointView:
    id: str
    project_id: str
    url: str
    events: tuple[str, ...]
    description: str
    enabled: bool
    disabled_reason: DisabledReason | None
    disabled_at: datetime | None
    failing_since: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, row: WebhookEndpoint) -> EndpointView:
        return cls(
            id=row.id,
            project_id=row.project_id,
            url=row.url,
            events=tuple(row.events),
            description=row.description,
            enabled=row.enabled,
            disabled_reason=cast(DisabledReason | None, row.disabled_reason),
            disabled_at=row.disabled_at,
            failing_since=row.failing_since,
            created_at=row.created_at,
        )


@dataclass(frozen=True, slots=True)
class AttemptView:
    attempt: int
    at: datetime
    status_code: int | None
    latency_ms: float
    response_excerpt: str
    error: str | None

    @classmethod
    def of(cls, row: WebhookAttempt) -> AttemptView:
        return cls(
            row.attempt_number,
            row.at,
            row.status_code,
            row.latency_ms,
            row.response_excerpt,
            row.error,
        )


@dataclass(frozen=True, slots=True)
class DeliveryView:
    id: str
    message_id: str
    event_type: str
    status: DeliveryStatus
    attempt_count: int
    next_attempt_at: datetime | None  # only while the delivery is pending
    last_error: str | None
    created_at: datetime
    attempts: tuple[AttemptView, ...]
    endpoint_id: str | None = None  # None for an upload session's own webhook URL

    @classmethod
    def of(
        cls, row: WebhookDelivery, event_type: str, attempts: Iterable[WebhookAttempt]
    ) -> DeliveryView:
        return cls(
            id=row.id,
            message_id=row.message_id,
            event_type=event_type,
            status=cast(DeliveryStatus, row.status),
            attempt_count=row.attempt_count,
            next_attempt_at=row.next_attempt_at if row.status == PENDING else None,
            last_error=row.last_error,
            created_at=row.created_at,
            attempts=tuple(AttemptView.of(a) for a in attempts),
            endpoint_id=row.endpoint_id,
        )
