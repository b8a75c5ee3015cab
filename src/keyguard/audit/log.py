"""Reading a project's audit log as views (for the dashboard's Audit room), newest first,
filtered by action and actor; and the chain's verdict."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from keyguard.audit.models import AuditEvent
from keyguard.audit.service import verify_chain
from keyguard.context import ServiceContext

MAX_PAGE = 200


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    at: datetime
    actor: str
    action: str
    target: str | None
    data: dict[str, Any]


async def project_log(
    ctx: ServiceContext,
    project_id: str,
    *,
    before: int | None = None,
    limit: int = 50,
    action: str = "",
    actor: str = "",
) -> list[AuditEntry]:
    """Up to ``limit`` events of the project older than ``before`` (seq), newest first;
    ``action`` matches a prefix (``key.`` for every key event), ``actor`` exactly."""
    query = select(AuditEvent).where(AuditEvent.project_id == project_id)
    if before is not None:
        query = query.where(AuditEvent.seq < before)
    if action:
        query = query.where(AuditEvent.action.startswith(action, autoescape=True))
    if actor:
        query = query.where(AuditEvent.actor == actor)
    query = query.order_by(AuditEvent.seq.desc()).limit(min(max(limit, 1), MAX_PAGE))
    async with ctx.sessions() as session:
        rows = (await session.execute(query)).scalars()
        return [AuditEntry(e.seq, e.at, e.actor, e.action, e.target, dict(e.data)) for e in rows]


async def chain_intact(ctx: ServiceContext) -> bool:
    """Whether every event follows from its predecessor (the whole log is read)."""
    async with ctx.sessions() as session:
        return not await verify_chain(session)
