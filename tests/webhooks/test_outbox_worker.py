"""The durable outbox and its worker, driven by an injected clock (no sleeping).

A real receiver on loopback answers; the clock decides what is due.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import anyio
import pytest
from sqlalchemy import select

from keyguard.accounts.service import InitResult
from keyguard.audit.models import AuditEvent
from keyguard.clock import FrozenClock, ts_from_utc, utc_from_ts
from keyguard.keys import service as keys
from keyguard.runtime import Runtime
from keyguard.webhooks import delivery as dl
from keyguard.webhooks.models import WebhookEndpoint
from keyguard.webhooks.outbox import enqueue
from keyguard.webhooks.schedule import JITTER, MAX_ATTEMPTS, RETRY_DELAYS
from keyguard.webhooks.worker import DeliveryWorker
from webhook_helpers import Receiver, Reply, add_endpoint, attempts, deliveries, messages


async def _key_created(runtime: Runtime, project_id: str, name: str = "k") -> str:
    created = await keys.create_key(runtime, project_id, keys.KeySpec(name=name), actor="test")
    return created.key.id


async def test_a_key_change_and_its_event_commit_together(
    runtime: Runtime, admin: InitResult, project_id: str, receiver: Receiver
) -> None:
    await add_endpoint(runtime, project_id, receiver.url("/ok"))
    key_id = await _key_created(runtime, project_id)
    [message] = await messages(runtime)
    assert message.event_type == "key.created"
    assert f'"key_id":"{key_id}"' in message.payload
    [delivery] = await deliveries(runtime)
    assert (delivery.status, delivery.attempt_count) == ("pending", 0)


async def test_an_event_rolled_back_with_its_change_is_never_sent(
    runtime: Runtime, admin: InitResult, project_id: str, receiver: Receiver
) -> None:
    await add_endpoint(runtime, project_id, receiver.url("/ok"))

    async def change_that_fails() -> None:
        async with runtime.transaction() as session:
            await enqueue(
                session,
                project_id=project_id,
                event_type="key.created",
                data={"key_id": "x"},
                at=utc_from_ts(runtime.clock.now()),
            )
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        await change_that_fails()
    assert await messages(runtime) == []
    assert await deliveries(runtime) == []


async def test_no_subscriber_means_no_message(
    runtime: Runtime, admin: InitResult, project_id: str, receiver: Receiver
) -> None:
    await add_endpoint(runtime, project_id, receiver.url("/ok"), ["photo.uploaded"])
    await _key_created(runtime, project_id)
    assert await messages(runtime) == []


async def test_a_successful_delivery_records_its_attempt(
    runtime: Runtime,
    admin: InitResult,
    project_id: str,
    receiver: Receiver,
    worker: DeliveryWorker,
) -> None:
    receiver.on("/ok", Reply(200, body=b"thanks"))
    await add_endpoint(runtime, project_id, receiver.url("/ok"))
    await _key_created(runtime, project_id)
    assert await worker.run_once() == 1
    [delivery] = await deliveries(runtime)
    assert (delivery.status, delivery.attempt_count, delivery.claim_token) == (
        "succeeded",
        1,
        None,
    )
    [attempt] = await attempts(runtime, delivery.id)
    assert (attempt.status_code, attempt.error, attempt.response_excerpt) == (200, None, "thanks")
    assert attempt.latency_ms > 0
    [seen] = receiver.requests
    assert seen.json()["type"] == "key.created"
    assert seen.headers["webhook-id"] == delivery.message_id
    assert await worker.run_once() == 0  # nothing left


async def test_the_retry_schedule_is_followed(
    runtime: Runtime,
    admin: InitResult,
    project_id: str,
    receiver: Receiver,
    worker: DeliveryWorker,
    clock: FrozenClock,
) -> None:
    receiver.on("/fail", Reply(500, body=b"boom"))
    await add_endpoint(runtime, project_id, receiver.url("/fail"))
    await _key_created(runtime, project_id)
    for n in range(1, MAX_ATTEMPTS + 1):
        assert await worker.run_once() == 1, f"attempt {n} was due"
        [delivery] = await deliveries(runtime)
        assert delivery.attempt_count == n
        if n == MAX_ATTEMPTS:
            break
        wait = ts_from_utc(delivery.next_attempt_at) - clock.now()
        scheduled = RETRY_DELAYS[n - 1]
        assert scheduled * (1 - JITTER) - 0.01 <= wait <= scheduled * (1 + JITTER) + 0.01
        clock.advance(wait - 1)
        assert await worker.run_once() == 0, "not due one second early"
        clock.advance(1)
    [delivery] = await deliveries(runtime)
    assert (delivery.status, delivery.last_error) == ("failed", "http_500")
    assert [a.status_code for a in await attempts(runtime, delivery.id)] == [500] * MAX_ATTEMPTS
    # The webhook-id is the same on every retry: receivers dedupe on it.
    assert {r.headers["webhook-id"] for r in receiver.requests} == {delivery.message_id}


async def test_retry_after_is_honoured(
    runtime: Runtime,
    admin: InitResult,
    project_id: str,
    receiver: Receiver,
    worker: DeliveryWorker,
    clock: FrozenClock,
) -> None:
    receiver.on("/busy", Reply(429, headers={"Retry-After": "120"}))
    await add_endpoint(runtime, project_id, receiver.url("/busy"))
    await _key_created(runtime, project_id)
    await worker.run_once()
    [delivery] = await deliveries(runtime)
    assert ts_from_utc(delivery.next_attempt_at) - clock.now() == pytest.approx(120, abs=0.01)


async def test_410_disables_the_endpoint_and_tells_the_owner(
    runtime: Runtime,
    admin: InitResult,
    project_id: str,
    receiver: Receiver,
    worker: DeliveryWorker,
) -> None:
    receiver.on("/gone", Reply(410))
    gone = await add_endpoint(runtime, project_id, receiver.url("/gone"))
    await add_endpoint(runtime, project_id, receiver.url("/other"), ["endpoint.disabled"])
    await _key_created(runtime, project_id, "one")
    await _key_created(runtime, project_id, "two")
    await worker.drain()
    async with runtime.sessions() as s:
        endpoint = await s.get(WebhookEndpoint, gone)
        assert endpoint is not None
        assert (endpoint.enabled, endpoint.disabled_reason) == (False, "gone")
        audited = (
            await s.execute(
                select(AuditEvent).where(AuditEvent.action == "webhook.endpoint_disabled")
            )
        ).scalar_one()
    assert audited.target == gone
    statuses = sorted(d.status for d in await deliveries(runtime) if d.endpoint_id == gone)
    assert statuses in (["cancelled", "failed"], ["failed", "failed"])
    assert len(receiver.seen("/gone")) <= 2
    [note] = receiver.seen("/other")
    assert note.json()["type"] == "endpoint.disabled"
    assert note.json()["data"] == note.json()["data"] | {"endpoint_id": gone, "reason": "gone"}


async def test_an_endpoint_failing_for_five_days_is_disabled(
    runtime: Runtime,
    admin: InitResult,
    project_id: str,
    receiver: Receiver,
    worker: DeliveryWorker,
    clock: FrozenClock,
) -> None:
    receiver.on("/down", Reply(503))
    endpoint_id = await add_endpoint(runtime, project_id, receiver.url("/down"))
    for day in range(6):
        await _key_created(runtime, project_id, f"day{day}")
        await worker.run_once()
        clock.advance(86_400)
    async with runtime.sessions() as s:
        endpoint = await s.get(WebhookEndpoint, endpoint_id)
    assert endpoint is not None
    assert (endpoint.enabled, endpoint.disabled_reason) == (False, "failing")


async def test_a_success_ends_a_failing_streak(
    runtime: Runtime,
    admin: InitResult,
    project_id: str,
    receiver: Receiver,
    worker: DeliveryWorker,
    clock: FrozenClock,
) -> None:
    answers = iter([Reply(500), Reply(200)])
    receiver.on("/flaky", lambda _: next(answers))
    endpoint_id = await add_endpoint(runtime, project_id, receiver.url("/flaky"))
    await _key_created(runtime, project_id)
    await worker.run_once()
    clock.advance(10)
    await worker.run_once()
    async with runtime.sessions() as s:
        endpoint = await s.get(WebhookEndpoint, endpoint_id)
    assert endpoint is not None
    assert (endpoint.enabled, endpoint.failing_since) == (True, None)


async def test_an_expired_lease_is_claimed_again_after_a_crash(
    runtime: Runtime, admin: InitResult, project_id: str, receiver: Receiver, clock: FrozenClock
) -> None:
    await add_endpoint(runtime, project_id, receiver.url("/ok"))
    await _key_created(runtime, project_id)
    claim = dict(in_flight={}, per_destination=4, lease_seconds=25.0)
    [first] = await dl.claim_due(runtime, limit=10, **claim)  # then the worker "dies"
    assert await dl.claim_due(runtime, limit=10, **claim) == []
    clock.advance(25)
    [again] = await dl.claim_due(runtime, limit=10, **claim)
    assert again.delivery_id == first.delivery_id
    assert again.token != first.token
    # The dead worker's late result does not override the new owner's.
    job = await dl.prepare(runtime, first)
    assert job is None


async def test_a_busy_destination_is_left_out_of_the_claim(
    runtime: Runtime, admin: InitResult, project_id: str, receiver: Receiver
) -> None:
    slow = await add_endpoint(runtime, project_id, receiver.url("/slow"))
    fast = await add_endpoint(runtime, project_id, receiver.url("/fast"))
    for i in range(5):
        await _key_created(runtime, project_id, f"k{i}")
    claims = await dl.claim_due(
        runtime, limit=10, in_flight={slow: 2}, per_destination=2, lease_seconds=30
    )
    assert {c.destination for c in claims} == {fast}
    assert len(claims) == 2  # the cap holds within one claim too


async def test_a_slow_endpoint_does_not_starve_the_others(
    runtime: Runtime, admin: InitResult, project_id: str, receiver: Receiver
) -> None:
    gate = asyncio.Event()
    receiver.on("/slow", Reply(200, gate=gate))
    await add_endpoint(runtime, project_id, receiver.url("/slow"))
    await add_endpoint(runtime, project_id, receiver.url("/fast"))
    for i in range(6):
        await _key_created(runtime, project_id, f"k{i}")
    worker = DeliveryWorker(runtime, concurrency=4, per_destination=2, poll_interval=0.05)
    async with worker.running():
        await _until(lambda: _true(len(receiver.seen("/fast")) == 6))
        assert len(receiver.seen("/slow")) == 2  # capped while it hangs
        gate.set()
        await _until(_all_succeeded(runtime, 12))


async def test_two_workers_never_claim_the_same_delivery(
    runtime: Runtime, admin: InitResult, project_id: str, receiver: Receiver
) -> None:
    for i in range(3):
        await add_endpoint(runtime, project_id, receiver.url(f"/e{i}"))
    for i in range(10):
        await _key_created(runtime, project_id, f"k{i}")
    rounds = await asyncio.gather(
        *(
            dl.claim_due(runtime, limit=7, in_flight={}, per_destination=10, lease_seconds=30)
            for _ in range(4)
        )
    )
    ids = [c.delivery_id for r in rounds for c in r]
    assert len(ids) == len(set(ids)) >= 7
    while more := await dl.claim_due(
        runtime, limit=7, in_flight={}, per_destination=10, lease_seconds=30
    ):
        ids += [c.delivery_id for c in more]
    assert len(ids) == len(set(ids)) == 30


async def test_stopping_the_worker_releases_its_leases(
    runtime: Runtime, admin: InitResult, project_id: str, receiver: Receiver
) -> None:
    gate = asyncio.Event()
    receiver.on("/hang", Reply(200, gate=gate))
    await add_endpoint(runtime, project_id, receiver.url("/hang"))
    await _key_created(runtime, project_id)
    worker = DeliveryWorker(runtime, poll_interval=0.05)
    async with worker.running():
        with anyio.fail_after(10):
            await receiver.arrived.wait()
        await worker.stop(grace=0.1)
    [delivery] = await deliveries(runtime)
    assert (delivery.status, delivery.claimed_until, delivery.claim_token) == (
        "pending",
        None,
        None,
    )
    gate.set()


async def test_an_answer_that_arrives_while_stopping_is_recorded(
    runtime: Runtime, admin: InitResult, project_id: str, receiver: Receiver
) -> None:
    gate = asyncio.Event()
    receiver.on("/late", Reply(200, gate=gate))
    await add_endpoint(runtime, project_id, receiver.url("/late"))
    await _key_created(runtime, project_id)
    worker = DeliveryWorker(runtime, poll_interval=0.05)
    async with worker.running():
        with anyio.fail_after(10):
            await receiver.arrived.wait()
        stopping = asyncio.create_task(worker.stop(grace=5))
        await asyncio.sleep(0.1)  # the claim loop has ended; the attempt is in flight
        gate.set()
        await stopping
    [delivery] = await deliveries(runtime)
    assert (delivery.status, delivery.attempt_count, delivery.claim_token) == (
        "succeeded",
        1,
        None,
    )
    assert [a.status_code for a in await attempts(runtime, delivery.id)] == [200]


async def _until(condition: Callable[[], Awaitable[bool]], seconds: float = 10) -> None:
    """Poll a condition on the real clock (only for tests of the running worker)."""
    with anyio.fail_after(seconds):
        while not await condition():  # noqa: ASYNC110 - polls the database, not an event
            await asyncio.sleep(0.01)


async def _true(value: bool) -> bool:
    return value


def _all_succeeded(runtime: Runtime, count: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return sum(d.status == "succeeded" for d in await deliveries(runtime)) == count

    return check
