"""Audit checkpoints go out as ``audit.checkpoint`` webhook events (CONTRACT §10), so a
signed copy of the log's state lives where the database's writer cannot reach it."""

from __future__ import annotations

import asyncio
import json

from keyguard.audit import checkpoints
from keyguard.audit.checkpoints import verify_extends
from keyguard.audit.note import Checkpoint, split, verified_by
from keyguard.projects import service as projects
from keyguard.webhooks.checkpoints import checkpoint_publisher, publish_checkpoint
from keyguard.webhooks.worker import DeliveryWorker
from webhook_helpers import Receiver, add_endpoint, messages


async def new_project(runtime, name: str) -> str:
    created = await projects.create_project(
        runtime, name=name, key_prefix=None, actor="test", owner=None
    )
    return created.project.id


async def test_a_new_checkpoint_reaches_every_subscribed_endpoint_once(
    runtime, receiver: Receiver, worker: DeliveryWorker
):
    a, b, c = [await new_project(runtime, name) for name in "abc"]
    await add_endpoint(runtime, a, receiver.url("/a"), ["audit.checkpoint"])
    await add_endpoint(runtime, b, receiver.url("/b"), ["key.created", "audit.checkpoint"])
    await add_endpoint(runtime, c, receiver.url("/c"), ["*"])
    assert await publish_checkpoint(runtime) == 2
    assert await publish_checkpoint(runtime) == 0, "the same size is not sent twice"
    await worker.drain()
    assert receiver.seen("/c") == [], "a catch-all endpoint is not told the log's size"
    [to_a], [to_b] = receiver.seen("/a"), receiver.seen("/b")
    assert to_a.json()["data"] == to_b.json()["data"]
    event = to_a.json()
    assert event["type"] == "audit.checkpoint"
    note = event["data"]["checkpoint"]
    keys = [k.verifier for k in await checkpoints.public_keys(runtime)]
    text, signers = verified_by(note, keys)
    assert signers == keys
    checkpoint = Checkpoint.parse(text)
    assert event["data"]["tree_size"] == checkpoint.size
    assert event["data"]["origin"] == checkpoint.origin
    # What the receiver kept is what `keyguard audit verify --checkpoint` checks later.
    await new_project(runtime, "d")
    async with runtime.sessions() as session:
        assert (await verify_extends(session, note)).checkpoint == checkpoint


async def test_the_log_growing_sends_the_next_checkpoint(runtime, receiver, worker):
    p = await new_project(runtime, "a")
    await add_endpoint(runtime, p, receiver.url("/a"), ["audit.checkpoint"])
    await publish_checkpoint(runtime)
    await new_project(runtime, "b")
    assert await publish_checkpoint(runtime) == 1
    await worker.drain()
    sizes = [e.json()["data"]["tree_size"] for e in receiver.seen("/a")]
    assert sorted(sizes) == [min(sizes), min(sizes) + 1]  # sent side by side: any order


async def test_instances_publishing_together_send_each_size_once(runtime):
    p = await new_project(runtime, "a")
    await add_endpoint(runtime, p, "http://127.0.0.1:9/a", ["audit.checkpoint"])
    sent = await asyncio.gather(*(publish_checkpoint(runtime) for _ in range(5)))
    assert sum(sent) == 1
    assert [m.event_type for m in await messages(runtime)] == ["audit.checkpoint"]


async def test_the_publisher_runs_at_start_and_on_its_schedule(runtime):
    p = await new_project(runtime, "a")
    await add_endpoint(runtime, p, "http://127.0.0.1:9/a", ["audit.checkpoint"])
    fast = runtime.settings.model_copy(update={"audit_checkpoint_seconds": 0.05})
    runtime.settings = fast
    async with checkpoint_publisher(runtime):
        for _ in range(100):
            if await messages(runtime):
                break
            await asyncio.sleep(0.02)
        await new_project(runtime, "b")
        for _ in range(100):
            if len(await messages(runtime)) == 2:
                break
            await asyncio.sleep(0.02)
    sent = [json.loads(m.payload) for m in await messages(runtime)]
    assert [m["tree_size"] for m in sent] == [sent[0]["tree_size"], sent[0]["tree_size"] + 1]
    assert all(split(m["checkpoint"])[1] for m in sent)
