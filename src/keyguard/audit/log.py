"""Reading a project's audit log as views (for the dashboard's Audit room), newest first,
filtered by action and actor; and the chain's verdict."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from keyguard.audit.models import AuditEvent
from keyguard.audit.service import verify_chain
from keyguard.clock import utc_from_ts
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


@dataclass(frozen=True, slots=True)
class ChainVerdict:
    at: datetime
    intact: bool


_VERDICT = "audit-chain-verdict"  # in the shared vault: every instance shows the same
_VERDICT_KEPT = 30 * 86_400


async def verify_and_remember(ctx: ServiceContext) -> ChainVerdict:
    """Recompute the whole chain (it reads every event: an administrator's action, not a
    page view) and keep the verdict for everyone to see."""
    async with ctx.sessions() as session:
        intact = not await verify_chain(session)
    verdict = ChainVerdict(utc_from_ts(ctx.clock.now()), intact)
    state = json.dumps({"at": ctx.clock.now(), "intact": intact})
    await ctx.state.vault.put(_VERDICT, state, _VERDICT_KEPT)
    return verdict


async def last_verdict(ctx: ServiceContext) -> ChainVerdict | None:
    found = await ctx.state.vault.peek(_VERDICT)
    if found is None:
        return None
    try:
        kept = json.loads(found)
        return ChainVerdict(utc_from_ts(float(kept["at"])), bool(kept["intact"]))
    except (ValueError, KeyError, TypeError):
        return None
