"""Usage per key and per project (CONTRACT §10): a root key, or a member of the project."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Query

from keyguard.api.deps import ContextDep, Manager
from keyguard.usage import service as usage
from keyguard.usage.schemas import BusyKeyOut, PointOut, TotalsOut, UsageOut
from keyguard.usage.views import Usage

router = APIRouter(tags=["usage"])

Granularity = Literal["minute", "hour", "day"]
From = Query(default=None, alias="from", description="Start (ISO 8601; default: a span before to)")
To = Query(default=None, alias="to", description="End (ISO 8601; default: now)")


def _out(view: Usage, **who: str) -> UsageOut:
    return UsageOut(
        **who,
        start=view.start,
        end=view.end,
        granularity=view.granularity,
        totals=TotalsOut.model_validate(view.totals, from_attributes=True),
        last_used_at=view.last_used_at,
        last_ip=view.last_ip,
        series=[PointOut.model_validate(p, from_attributes=True) for p in view.series],
    )


@router.get("/v1/keys/{key_id}/usage", response_model=UsageOut, response_model_exclude_none=True)
async def key_usage(
    key_id: str,
    rt: ContextDep,
    _: Manager,
    start: datetime | None = From,
    end: datetime | None = To,
    granularity: Granularity = "hour",
) -> UsageOut:
    view = await usage.key_usage(rt, key_id, start=start, end=end, granularity=granularity)
    return _out(view, key_id=key_id)


@router.get(
    "/v1/projects/{project_id}/usage",
    response_model=UsageOut,
    response_model_exclude_none=False,
)
async def project_usage(
    project_id: str,
    rt: ContextDep,
    _: Manager,
    start: datetime | None = From,
    end: datetime | None = To,
    granularity: Granularity = "hour",
) -> UsageOut:
    view = await usage.project_usage(rt, project_id, start=start, end=end, granularity=granularity)
    out = _out(view, project_id=project_id)
    out.busiest_keys = [BusyKeyOut(key_id=k.key_id, requests=k.requests) for k in view.busiest_keys]
    return out
