"""Webhook endpoints, their deliveries and the project's webhook secret (CONTRACT §7).

Root key only, like the rest of the management API.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, Response, status

from keyguard.api.deps import ContextDep, SecretRotator, WebhookManager
from keyguard.projects import service as projects
from keyguard.webhooks import endpoints
from keyguard.webhooks.schemas import (
    AttemptOut,
    DeliveryOut,
    DeliveryPage,
    EndpointCreate,
    EndpointOut,
    EndpointUpdate,
    SecretRotate,
    SecretRotated,
)
from keyguard.webhooks.views import DeliveryView, EndpointView

router = APIRouter(prefix="/v1/projects/{project_id}", tags=["webhooks"])


def endpoint_out(view: EndpointView) -> EndpointOut:
    return EndpointOut(
        id=view.id,
        project_id=view.project_id,
        url=view.url,
        events=list(view.events),
        description=view.description,
        enabled=view.enabled,
        disabled_reason=view.disabled_reason,
        disabled_at=view.disabled_at,
        failing_since=view.failing_since,
        created_at=view.created_at,
    )


def delivery_out(view: DeliveryView) -> DeliveryOut:
    return DeliveryOut(
        id=view.id,
        message_id=view.message_id,
        event_type=view.event_type,
        status=view.status,
        attempt_count=view.attempt_count,
        next_attempt_at=view.next_attempt_at,
        last_error=view.last_error,
        created_at=view.created_at,
        attempts=[
            AttemptOut(
                attempt=a.attempt,
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
    project_id: str, body: EndpointCreate, rt: ContextDep, caller: WebhookManager
) -> EndpointOut:
    view = await endpoints.create_endpoint(
        rt,
        project_id,
        url=body.url,
        events=body.events,
        description=body.description,
        actor=caller.actor,
    )
    return endpoint_out(view)


@router.get("/webhooks", response_model=list[EndpointOut])
async def list_endpoints(project_id: str, rt: ContextDep, _: WebhookManager) -> list[EndpointOut]:
    return [endpoint_out(e) for e in await endpoints.list_endpoints(rt, project_id)]


@router.get("/webhooks/{endpoint_id}", response_model=EndpointOut)
async def get_endpoint(
    project_id: str, endpoint_id: str, rt: ContextDep, _: WebhookManager
) -> EndpointOut:
    return endpoint_out(await endpoints.get_endpoint(rt, project_id, endpoint_id))


@router.patch("/webhooks/{endpoint_id}", response_model=EndpointOut)
async def update_endpoint(
    project_id: str, endpoint_id: str, body: EndpointUpdate, rt: ContextDep, caller: WebhookManager
) -> EndpointOut:
    view = await endpoints.update_endpoint(
        rt,
        project_id,
        endpoint_id,
        events=body.events,
        description=body.description,
        actor=caller.actor,
    )
    return endpoint_out(view)


@router.delete("/webhooks/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_endpoint(
    project_id: str, endpoint_id: str, rt: ContextDep, caller: WebhookManager
) -> Response:
    await endpoints.delete_endpoint(rt, project_id, endpoint_id, actor=caller.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/webhooks/{endpoint_id}/enable", response_model=EndpointOut)
async def enable_endpoint(
    project_id: str, endpoint_id: str, rt: ContextDep, caller: WebhookManager
) -> EndpointOut:
    view = await endpoints.enable_endpoint(rt, project_id, endpoint_id, actor=caller.actor)
    return endpoint_out(view)


@router.post("/webhooks/{endpoint_id}/disable", response_model=EndpointOut)
async def disable_endpoint(
    project_id: str, endpoint_id: str, rt: ContextDep, caller: WebhookManager
) -> EndpointOut:
    view = await endpoints.disable_endpoint(rt, project_id, endpoint_id, actor=caller.actor)
    return endpoint_out(view)


@router.get("/webhooks/{endpoint_id}/deliveries", response_model=DeliveryPage)
async def list_deliveries(
    project_id: str,
    endpoint_id: str,
    rt: ContextDep,
    _: WebhookManager,
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
    project_id: str, endpoint_id: str, delivery_id: str, rt: ContextDep, caller: WebhookManager
) -> DeliveryOut:
    view = await endpoints.redeliver(rt, project_id, endpoint_id, delivery_id, actor=caller.actor)
    return delivery_out(view)


@router.post(
    "/webhook-secret/rotate", status_code=status.HTTP_201_CREATED, response_model=SecretRotated
)
async def rotate_webhook_secret(
    project_id: str,
    rt: ContextDep,
    caller: SecretRotator,
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
