"""The audit log of a project (CONTRACT §10), root key only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from keyguard.api.deps import ContextDep, Manager
from keyguard.api.schema_base import SQL_BIGINT_MAX
from keyguard.audit import service as audit
from keyguard.projects import service as projects

router = APIRouter(tags=["audit"])


class AuditEventOut(BaseModel):
    seq: int
    at: datetime
    actor: str
    action: str
    target: str | None
    data: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    data: list[AuditEventOut]
    next_after: int | None


@router.get("/v1/projects/{project_id}/audit", response_model=AuditPage)
async def project_audit(
    project_id: str,
    rt: ContextDep,
    _: Manager,
    after: int = Query(
        default=0, ge=0, le=SQL_BIGINT_MAX, description="Return events with seq greater than this"
    ),
    limit: int = Query(default=100, ge=1, le=500),
) -> AuditPage:
    await projects.get_project(rt, project_id)  # 404 for an unknown project
    async with rt.sessions() as session:
        events = await audit.project_events(session, project_id, after=after, limit=limit)
    return AuditPage(
        data=[
            AuditEventOut(
                seq=e.seq,
                at=e.at,
                actor=e.actor,
                action=e.action,
                target=e.target,
                data=e.data,
                prev_hash=e.prev_hash,
                hash=e.hash,
            )
            for e in events
        ],
        next_after=events[-1].seq if len(events) == limit else None,
    )
