"""Append-only, hash-chained audit log, also a Merkle tree (RFC 9162).

Each event's hash, an HMAC under a subkey of the master key, covers the previous event's
hash and the event's canonical JSON, so any edit, deletion or reordering of a row breaks
the chain from that row on, and nobody without the master key can re-forge it. Appends update
the single ``audit_head`` row inside the caller's transaction, which serialises writers
on PostgreSQL (row lock) and SQLite (one writer at a time).

The chain detects an edited row but not a log cut short and its head rewritten (whoever
writes the database can do both). The Merkle tree (:mod:`keyguard.audit.tree`) closes
that: signed checkpoints kept outside the database (:mod:`keyguard.audit.checkpoints`)
commit to a size and a root, which a truncated or rewritten log cannot extend.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from keyguard.audit import tree
from keyguard.audit.models import AuditEvent, AuditHead

GENESIS = "0" * 64
AUDIT_KEY = "keyguard.audit_chain_key"  # session.info entry holding the chain's HMAC key
# session.info entry holding the features' subscribers: each is handed every appended
# event inside the appending transaction (webhooks turn security events into deliveries
# through the durable outbox), so audit knows none of them.
AUDIT_SUBSCRIBERS = "keyguard.audit_subscribers"


def canonical(
    seq: int,
    at: datetime,
    project_id: str | None,
    actor: str,
    action: str,
    target: str | None,
    data: dict[str, Any],
) -> bytes:
    return json.dumps(
        {
            "seq": seq,
            "at": at.isoformat(timespec="microseconds"),
            "project_id": project_id,
            "actor": actor,
            "action": action,
            "target": target,
            "data": data,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    ).encode()


def chain_hash(key: bytes, prev_hash: str, body: bytes) -> str:
    """HMAC-SHA256, not a bare hash: whoever can write the database but does not hold the
    master key cannot recompute the chain after editing a row."""
    return hmac.new(key, prev_hash.encode() + body, hashlib.sha256).hexdigest()


def _chain_key(session: AsyncSession) -> bytes:
    # The session factory carries it (storage.db.session_factory), so every service that
    # appends inside its own transaction gets it without threading it through each call.
    key = session.info.get(AUDIT_KEY)
    if not isinstance(key, bytes):
        raise RuntimeError("this database session has no audit chain key")
    return key


async def record(
    session: AsyncSession,
    *,
    at: datetime,
    actor: str,
    action: str,
    target: str | None = None,
    project_id: str | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event in the caller's transaction. ``data`` must never hold a secret."""
    data = data or {}
    head = (
        await session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update())
    ).scalar_one_or_none()
    if head is None:  # migration 0004 creates it; a missing head means a damaged database
        raise RuntimeError("audit_head row is missing: run the migrations")
    seq = head.seq + 1
    body = canonical(seq, at, project_id, actor, action, target, data)
    digest = chain_hash(_chain_key(session), head.hash, body)
    event = AuditEvent(
        seq=seq,
        at=at,
        project_id=project_id,
        actor=actor,
        action=action,
        target=target,
        data=data,
        prev_hash=head.hash,
        hash=digest,
    )
    session.add(event)
    session.add_all(tree.append(head, head.seq, body))
    head.seq = seq
    head.hash = digest
    await session.flush()
    for subscriber in session.info.get(AUDIT_SUBSCRIBERS, ()):
        await subscriber(session, event)
    return event


@dataclass(frozen=True, slots=True)
class ChainBreak:
    seq: int
    reason: str


async def events_through(
    session: AsyncSession, *, upto: int, batch: int = 1000
) -> AsyncIterator[AuditEvent]:
    """Events 1..``upto`` in order, read in batches (the session is emptied after each)."""
    after = 0
    while True:
        rows = (
            (
                await session.execute(
                    select(AuditEvent)
                    .where(AuditEvent.seq > after, AuditEvent.seq <= upto)
                    .order_by(AuditEvent.seq)
                    .limit(batch)
                )
            )
            .scalars()
            .all()
        )
        if not rows:
            return
        for row in rows:
            yield row
        after = rows[-1].seq
        session.expunge_all()


async def verify_chain(session: AsyncSession) -> list[ChainBreak]:
    """Recompute the chain; report every row that does not follow from its predecessor.

    The head is read first and only the events it counted are checked, so events appended
    while this runs are neither missed nor mistaken for tampering.
    """
    breaks: list[ChainBreak] = []
    key = _chain_key(session)
    head = (await session.execute(select(AuditHead).where(AuditHead.id == 1))).scalar_one_or_none()
    upto = head.seq if head is not None else 0
    prev_hash, expected_seq, last_seq = GENESIS, 1, 0
    async for ev in events_through(session, upto=upto):
        if ev.seq != expected_seq:
            breaks.append(ChainBreak(ev.seq, f"missing events before {ev.seq}"))
        if ev.prev_hash != prev_hash:
            breaks.append(ChainBreak(ev.seq, "prev_hash does not match the previous event"))
        body = canonical(ev.seq, ev.at, ev.project_id, ev.actor, ev.action, ev.target, ev.data)
        if chain_hash(key, ev.prev_hash, body) != ev.hash:
            breaks.append(ChainBreak(ev.seq, "event content does not match its hash"))
        prev_hash, expected_seq, last_seq = ev.hash, ev.seq + 1, ev.seq
    if head is not None and (head.seq != last_seq or head.hash != prev_hash):
        breaks.append(ChainBreak(last_seq, "events after this one were deleted"))
    return breaks


async def project_events(
    session: AsyncSession, project_id: str, *, after: int = 0, limit: int = 100
) -> list[AuditEvent]:
    rows = await session.execute(
        select(AuditEvent)
        .where(AuditEvent.project_id == project_id, AuditEvent.seq > after)
        .order_by(AuditEvent.seq)
        .limit(limit)
    )
    return list(rows.scalars())
