"""What the audit tree tests share: the log's leaves recomputed from its rows."""

from __future__ import annotations

from sqlalchemy import delete, select

from keyguard.audit import merkle
from keyguard.audit.models import AuditEvent, AuditHead, AuditTreeNode
from keyguard.audit.service import GENESIS, canonical
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


async def truncate_like_an_attacker(runtime: Runtime, keep: int) -> None:
    """Delete every event after ``keep`` and rewrite everything that could give it away:
    the chain's head, the stored tree and its compact range. The hash chain verifies
    after this; only a checkpoint kept elsewhere can tell."""
    leaves = (await leaf_hashes(runtime))[:keep]
    stack: list[bytes] = []
    for i, leaf in enumerate(leaves):
        merkle.compact_append(stack, i, leaf)
    async with runtime.sessions() as session, session.begin():
        last = (
            await session.execute(select(AuditEvent).where(AuditEvent.seq == keep))
        ).scalar_one_or_none()
        await session.execute(delete(AuditEvent).where(AuditEvent.seq > keep))
        nodes = (await session.execute(select(AuditTreeNode))).scalars()
        for node in nodes:
            if (node.idx + 1) << node.level > keep:
                await session.delete(node)
        head = (await session.execute(select(AuditHead))).scalar_one()
        head.seq = keep
        head.hash = last.hash if last is not None else GENESIS
        head.frontier = [h.hex() for h in stack]
