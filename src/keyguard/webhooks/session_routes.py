"""Deliveries to an upload session's own ``webhook_url`` (CONTRACT §6, §7).

The project key that owns the session lists them (each with every attempt, the same
shape as an endpoint's deliveries) and redelivers one; another project's session or
delivery is a 404, as if it did not exist.
"""

from __future__ import annotations

from fastapi import APIRouter, Query, status

from keyguard.api.deps import ContextDep, ProjectCaller
from keyguard.webhooks import endpoints
from keyguard.webhooks.endpoints import Destination
from keyguard.webhooks.routes import delivery_out
from keyguard.webhooks.schemas import DeliveryOut, DeliveryPage

router = APIRouter(prefix="/v1/sessions/{session_id}/deliveries", tags=["sessions"])


@router.get("", response_model=DeliveryPage)
async def list_session_deliveries(
    session_id: str,
    rt: ContextDep,
    caller: ProjectCaller,
    limit: int = Query(default=50, ge=1, le=200),
) -> DeliveryPage:
    views = await endpoints.destination_deliveries(
        rt, caller.project_id or "", Destination.session(session_id), limit=limit
    )
    return DeliveryPage(data=[delivery_out(v) for v in views])


@router.post(
    "/{delivery_id}/redeliver", status_code=status.HTTP_202_ACCEPTED, response_model=DeliveryOut
)
async def redeliver_to_session(
    session_id: str, delivery_id: str, rt: ContextDep, caller: ProjectCaller
) -> DeliveryOut:
    view = await endpoints.redeliver_to(
        rt,
        caller.project_id or "",
        Destination.session(session_id),
        delivery_id,
        actor=caller.actor,
    )
    return delivery_out(view)


__all__ = ["router"]
