"""A kept checkpoint catches what the hash chain cannot (issue 10, defect 6): events cut
from the end with the head rewritten, the whole log replaced, a rewritten history."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from audit_tree_helpers import truncate_like_an_attacker
from keyguard.audit import checkpoints
from keyguard.audit.checkpoints import CheckpointMismatch, verify_extends
from keyguard.audit.models import AuditEvent, AuditHead, AuditTreeNode
from keyguard.audit.note import Verifier
from keyguard.audit.service import canonical, chain_hash, verify_chain
from keyguard.projects import service as projects


async def grow(runtime, n: int) -> None:
    for i in range(n):
        await projects.create_project(
            runtime, name=f"p{i}", key_prefix=None, actor="test", owner=None
        )


async def kept_checkpoint(runtime) -> str:
    return (await checkpoints.sign_current(runtime)).note


async def check(runtime, note: str, trusted=None):
    async with runtime.sessions() as session:
        return await verify_extends(session, note, trusted=trusted)


async def chain_is_intact(runtime) -> bool:
    async with runtime.sessions() as session:
        return await verify_chain(session) == []


async def test_a_log_that_grew_extends_the_checkpoint(runtime):
    await grow(runtime, 3)
    note = await kept_checkpoint(runtime)
    await grow(runtime, 4)
    extension = await check(runtime, note)
    assert (extension.checkpoint.size, extension.log_size) == (3, 7)


async def test_events_cut_from_the_end_with_the_head_rewritten_are_caught(runtime):
    await grow(runtime, 6)
    note = await kept_checkpoint(runtime)
    await truncate_like_an_attacker(runtime, keep=4)
    assert await chain_is_intact(runtime), "the hole of defect 6: the chain alone sees nothing"
    with pytest.raises(CheckpointMismatch, match="has 4 events but the checkpoint commits to 6"):
        await check(runtime, note)


async def test_the_whole_log_deleted_and_the_head_reset_is_caught(runtime):
    await grow(runtime, 3)
    note = await kept_checkpoint(runtime)
    await truncate_like_an_attacker(runtime, keep=0)
    assert await chain_is_intact(runtime)
    with pytest.raises(CheckpointMismatch, match="has 0 events"):
        await check(runtime, note)


async def test_cut_then_regrown_to_the_same_size_is_caught(runtime):
    """An attacker replaces the last events with others of their choosing."""
    await grow(runtime, 5)
    note = await kept_checkpoint(runtime)
    await truncate_like_an_attacker(runtime, keep=3)
    await grow(runtime, 4)
    assert await chain_is_intact(runtime)
    with pytest.raises(CheckpointMismatch, match="no longer hash to the checkpoint's root"):
        await check(runtime, note)


async def test_an_event_rewritten_with_its_chain_recomputed_is_caught(runtime):
    """Even someone holding the chain key (the master key) cannot rewrite the past."""
    await grow(runtime, 4)
    note = await kept_checkpoint(runtime)
    key = runtime.sessions.kw["info"]["keyguard.audit_chain_key"]
    async with runtime.sessions() as session, session.begin():
        events = list(
            (await session.execute(select(AuditEvent).order_by(AuditEvent.seq))).scalars()
        )
        events[1].actor = "mallory"
        prev = events[0].hash
        for ev in events[1:]:
            body = canonical(ev.seq, ev.at, ev.project_id, ev.actor, ev.action, ev.target, ev.data)
            ev.prev_hash, ev.hash = prev, chain_hash(key, prev, body)
            prev = ev.hash
        await session.execute(update(AuditHead).values(hash=prev))
    assert await chain_is_intact(runtime)
    with pytest.raises(CheckpointMismatch, match="no longer hash"):
        await check(runtime, note)


async def test_a_tampered_stored_tree_is_caught(runtime):
    await grow(runtime, 4)
    note = await kept_checkpoint(runtime)
    async with runtime.sessions() as session, session.begin():
        await session.execute(
            update(AuditTreeNode)
            .where(AuditTreeNode.level == 1, AuditTreeNode.idx == 0)
            .values(hash="00" * 32)
        )
    with pytest.raises(CheckpointMismatch, match="stored Merkle tree"):
        await check(runtime, note)


async def test_a_forged_or_foreign_checkpoint_is_refused(runtime, tmp_path):
    await grow(runtime, 2)
    note = await kept_checkpoint(runtime)
    edited = note.replace("\n2\n", "\n1\n", 1)
    with pytest.raises(CheckpointMismatch, match="signature"):
        await check(runtime, edited)
    other = Verifier.parse("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
    with pytest.raises(CheckpointMismatch, match="signature"):
        await check(runtime, note, trusted=[other])
    with pytest.raises(CheckpointMismatch, match="not a checkpoint"):
        await check(runtime, "hello\n")
    foreign = note.replace("localhost:8443/keyguard/audit", "elsewhere.example/log", 1)
    with pytest.raises(CheckpointMismatch, match="is for the log"):
        await check(runtime, foreign)


async def test_the_published_key_pinned_by_the_user_verifies(runtime):
    await grow(runtime, 2)
    note = await kept_checkpoint(runtime)
    [key] = await checkpoints.public_keys(runtime)
    assert (await check(runtime, note, trusted=[key.verifier])).signed_by == key.verifier


async def test_concurrent_appends_keep_the_tree_equal_to_the_events(runtime):
    import asyncio

    from audit_tree_helpers import leaf_hashes
    from keyguard.audit import merkle

    await asyncio.gather(
        *(
            projects.create_project(runtime, name=f"c{i}", key_prefix=None, actor="t", owner=None)
            for i in range(20)
        )
    )
    leaves = await leaf_hashes(runtime)
    signed = await checkpoints.sign_current(runtime)
    assert signed.checkpoint.root == merkle.root_of(leaves)
    assert (await check(runtime, signed.note)).log_size == len(leaves)


async def test_a_log_growing_during_the_check_is_not_called_tampered(runtime, monkeypatch):
    """Another instance appends while `audit verify` reads: only the events the head
    counted when the check began are checked (the review found a false alarm here)."""
    from keyguard.audit import service as audit
    from keyguard.clock import utc_from_ts

    await grow(runtime, 3)
    note = await kept_checkpoint(runtime)
    real = audit.events_through

    async def appending_meanwhile(session, **kwargs):  # type: ignore[no-untyped-def]
        first = True
        async for event in real(session, **kwargs):
            yield event
            if first:
                first = False
                async with runtime.transaction() as other:
                    await audit.record(
                        other, at=utc_from_ts(runtime.clock.now()), actor="x", action="meanwhile"
                    )

    monkeypatch.setattr(audit, "events_through", appending_meanwhile)
    extension = await check(runtime, note)
    assert extension.log_size == 3
    assert await chain_is_intact(runtime)  # the chain check, racing the same way
