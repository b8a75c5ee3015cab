"""Webhook endpoints, their deliveries and the project's webhook secret (CONTRACT §7).

Root key only, like the rest of the management API.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, Response, status

from keyguard.api.deps import ContextDep, Manager
from keyguard.projects import service as projects
from keyguard.webhooks import endpoints
from keyguard.webhooks.endpoints import DeliveryView
from keyguard.webhooks.models import WebhookEndpoint
from keyguard.webhooks.outbox import PENDING
from keyguard.webhooks.schemas import (
    AttemptOut,
    DeliveryOut,
    DeliveryPage,
    EndpointCreate,
    EndpointOut,
    SecretRotate,
    SecretRotated,
)

router = APIRouter(prefix="/v1/projects/{project_id}", tags=["webhooks"])


def endpoint_out(row: WebhookEndpoint) -> EndpointOut:
    return EndpointOut(
        id=row.id,
        project_id=row.project_id,
        url=row.url,
        events=list(row.events),
        description=row.description,
        enabled=row.enabled,
        disabled_reason=row.disabled_reason,
        disabled_at=row.disabled_at,
        failing_since=row.failing_since,
        created_at=row.created_at,
    )


def delivery_out(view: DeliveryView) -> DeliveryOut:
    d = view.delivery
    return DeliveryOut(
        id=d.id,
        message_id=d.message_id,
        event_type=view.event_type,
        status=d.status,
        attempt_count=d.attempt_count,
        next_attempt_at=d.next_attempt_at if d.status == PENDING else None,
        last_error=d.last_error,
        created_at=d.created_at,
        attempts=[
            AttemptOut(
                attempt=a.attempt_number,
                at=a.at,
                status_code=a.status_code,
                latency_ms=a.latency_ms,
                response_body=a.response_excerpt,
                error=a.error,
            )
            for a in view.attempts
        ],
    )


@router.post("/webhooks", status_code=status.HTTP_201_CREATED, response_model=EndpointOut)
async def create_endpoint(
    project_id: str, body: EndpointCreate, rt: ContextDep, caller: Manager
) -> EndpointOut:
    row = await endpoints.create_endpoint(
        rt,
        project_id,
        url=body.url,
        events=body.events,
        description=body.description,
        actor=caller.actor,
    )
    return endpoint_out(row)


@router.get("/webhooks", response_model=list[EndpointOut])
async def list_endpoints(project_id: str, rt: ContextDep, _: Manager) -> list[EndpointOut]:
    return [endpoint_out(e) for e in await endpoints.list_endpoints(rt, project_id)]


@router.get("/webhooks/{endpoint_id}", response_model=EndpointOut)
async def get_endpoint(
    project_id: str, endpoint_id: str, rt: ContextDep, _: Manager
) -> EndpointOut:
    return endpoint_out(await endpoints.get_endpoint(rt, project_id, endpoint_id))


@router.delete("/webhooks/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_endpoint(
    project_id: str, endpoint_id: str, rt: ContextDep, caller: Manager
) -> Response:
    await endpoints.delete_endpoint(rt, project_id, endpoint_id, actor=caller.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/webhooks/{endpoint_id}/enable", response_model=EndpointOut)
async def enable_endpoint(
    project_id: str, endpoint_id: str, rt: ContextDep, caller: Manager
) -> EndpointOut:
    row = await endpoints.enable_endpoint(rt, project_id, endpoint_id, actor=caller.actor)
    return endpoint_out(row)


@router.get("/webhooks/{endpoint_id}/deliveries", response_model=DeliveryPage)
async def list_deliveries(
    project_id: str,
    endpoint_id: str,
    rt: ContextDep,
    _: Manager,
    limit: int = Query(default=50, ge=1, le=200),
) -> DeliveryPage:
    views = await endpoints.list_deliveries(rt, project_id, endpoint_id, limit=limit)
    return DeliveryPage(data=[delivery_out(v) for v in views])


@router.post(
    "/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DeliveryOut,
)
async def redeliver(
    project_id: str, endpoint_id: str, delivery_id: str, rt: ContextDep, caller: Manager
) -> DeliveryOut:
    view = await endpoints.redeliver(rt, project_id, endpoint_id, delivery_id, actor=caller.actor)
    return delivery_out(view)


@router.post(
    "/webhook-secret/rotate", status_code=status.HTTP_201_CREATED, response_model=SecretRotated
)
async def rotate_webhook_secret(
    project_id: str,
    rt: ContextDep,
    caller: Manager,
    body: Annotated[SecretRotate | None, Body()] = None,
) -> SecretRotated:
    overlap = (body or SecretRotate()).overlap_seconds
    rotated = await projects.rotate_webhook_secret(
        rt, project_id, overlap_seconds=overlap, actor=caller.actor
    )
    return SecretRotated(
        webhook_secret=rotated.webhook_secret,
        previous_secret_valid_until=rotated.previous_valid_until,
    )
