"""A delivery that cannot even be prepared (here: the project's sealed webhook secret no
longer opens) is a recorded ``internal_error`` attempt on the normal retry schedule,
visible through the API, and ends as failed; the rest of its batch is sent as usual."""

from __future__ import annotations

import httpx
from sqlalchemy import update

from keyguard.clock import FrozenClock, ts_from_utc
from keyguard.keys import service as keys
from keyguard.projects import service as projects
from keyguard.projects.models import Project
from keyguard.runtime import Runtime
from keyguard.webhooks.schedule import JITTER, MAX_ATTEMPTS, RETRY_DELAYS
from keyguard.webhooks.worker import DeliveryWorker
from webhook_helpers import Receiver, add_endpoint, attempts, deliveries


async def test_an_unpreparable_delivery_is_recorded_retried_then_failed_alone(
    client: httpx.AsyncClient,
    runtime: Runtime,
    root_headers: dict[str, str],
    project_id: str,
    receiver: Receiver,
    worker: DeliveryWorker,
    clock: FrozenClock,
) -> None:
    healthy = await projects.create_project(
        runtime, name="healthy", key_prefix=None, actor="test", owner=None
    )
    broken_endpoint = await add_endpoint(runtime, project_id, receiver.url("/broken"))
    await add_endpoint(runtime, healthy.project.id, receiver.url("/healthy"))
    async with runtime.transaction() as s:
        await s.execute(
            update(Project)
            .where(Project.id == project_id)
            .values(webhook_secret_sealed="v1.not-a-sealed-secret")
        )
    await keys.create_key(runtime, project_id, keys.KeySpec(name="a"), actor="test")
    await keys.create_key(runtime, healthy.project.id, keys.KeySpec(name="b"), actor="test")

    assert await worker.run_once() == 2  # one batch: both claimed together
    assert len(receiver.seen("/healthy")) == 1  # the healthy delivery went out
    assert receiver.seen("/broken") == []  # nothing unsigned is ever sent
    [delivery] = [d for d in await deliveries(runtime) if d.endpoint_id == broken_endpoint]
    assert (delivery.status, delivery.attempt_count, delivery.last_error) == (
        "pending",
        1,
        "internal_error",
    )
    assert delivery.claimed_until is None  # not left to a lease expiry
    wait = ts_from_utc(delivery.next_attempt_at) - clock.now()
    assert RETRY_DELAYS[0] * (1 - JITTER) - 0.01 <= wait <= RETRY_DELAYS[0] * (1 + JITTER) + 0.01

    for _ in range(MAX_ATTEMPTS - 1):
        [delivery] = [d for d in await deliveries(runtime) if d.endpoint_id == broken_endpoint]
        clock.advance(ts_from_utc(delivery.next_attempt_at) - clock.now())
        assert await worker.run_once() == 1
    assert await worker.run_once() == 0
    [delivery] = [d for d in await deliveries(runtime) if d.endpoint_id == broken_endpoint]
    assert (delivery.status, delivery.attempt_count) == ("failed", MAX_ATTEMPTS)
    recorded = await attempts(runtime, delivery.id)
    assert [a.error for a in recorded] == ["internal_error"] * MAX_ATTEMPTS
    assert {a.status_code for a in recorded} == {None}
    assert receiver.seen("/broken") == []

    listed = await client.get(
        f"/v1/projects/{project_id}/webhooks/{broken_endpoint}/deliveries", headers=root_headers
    )
    [shown] = listed.json()["data"]
    assert (shown["status"], shown["last_error"]) == ("failed", "internal_error")
    assert [a["error"] for a in shown["attempts"]] == ["internal_error"] * MAX_ATTEMPTS
    # Keyguard's own failure is not held against the receiver.
    endpoint = await client.get(
        f"/v1/projects/{project_id}/webhooks/{broken_endpoint}", headers=root_headers
    )
    assert (endpoint.json()["enabled"], endpoint.json()["failing_since"]) == (True, None)
