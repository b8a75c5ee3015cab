"""What the audit tree tests share: the log's leaves recomputed from its rows."""

from __future__ import annotations

from sqlalchemy import select

from keyguard.audit import merkle
from keyguard.audit.models import AuditEvent
from keyguard.audit.service import canonical
from keyguard.runtime import Runtime


async def leaf_hashes(runtime: Runtime) -> list[bytes]:
    async with runtime.sessions() as session:
        events = (await session.execute(select(AuditEvent).order_by(AuditEvent.seq))).scalars()
        return [
            merkle.leaf_hash(
                canonical(e.seq, e.at, e.project_id, e.actor, e.action, e.target, e.data)
            )
            for e in events
        ]
