"""Batching in the outbox keeps its guarantees: the claim reads everything an attempt
needs, results are written a batch per transaction, and a crash anywhere in between
loses nothing (the leases expire and every delivery is sent again)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from sqlalchemy import event, update

from keyguard.accounts.service import InitResult
from keyguard.clock import FrozenClock, utc_from_ts
from keyguard.keys import service as keys
from keyguard.runtime import Runtime
from keyguard.settings import Settings
from keyguard.webhooks import delivery as dl
from keyguard.webhooks import endpoints
from keyguard.webhooks.attempt import AttemptResult
from keyguard.webhooks.models import WebhookDelivery, WebhookEndpoint
from keyguard.webhooks.sender import send_webhook
from keyguard.webhooks.worker import DeliveryWorker
from webhook_helpers import Receiver, add_endpoint, attempts, deliveries

CLAIM = dict(in_flight={}, per_destination=4, lease_seconds=25.0)


async def _events(runtime: Runtime, project_id: str, n: int) -> None:
    for i in range(n):
        await keys.create_key(runtime, project_id, keys.KeySpec(name=f"k{i}"), actor="test")


def _count_statements(runtime: Runtime) -> list[str]:
    seen: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(runtime.db.sync_engine, "before_cursor_execute", before)
    return seen


async def _send_all(settings: Settings, jobs: list[dl.Job | None]) -> list[Any]:
    out = []
    for job in jobs:
        assert job is not None
        result = await send_webhook(
            job.url, job.body, job.headers, allow_private=settings.webhook_private_networks
        )
        out.append((job, result))
    return out


async def test_a_fresh_claim_needs_no_further_read_to_sign(
    runtime: Runtime, admin: InitResult, project_id: str, receiver: Receiver
) -> None:
    for i in range(3):
        await add_endpoint(runtime, project_id, receiver.url(f"/e{i}"))
    await _events(runtime, project_id, 2)
    claims = await dl.claim_due(runtime, limit=10, **CLAIM)
    assert len(claims) == 6
    statements = _count_statements(runtime)
    jobs = await dl.prepare_many(runtime, claims)
    assert statements == []
    # The same request as a fresh read would build (timestamps equal: frozen clock).
    for claim, job in zip(claims, jobs, strict=True):
        again = await dl.prepare(runtime, claim)
        assert job is not None
        assert again is not None
        assert (job.url, job.body, job.headers, job.attempt_number) == (
            again.url,
            again.body,
            again.headers,
            again.attempt_number,
        )


async def test_a_deleted_endpoint_is_cancelled_even_from_a_loaded_claim(
    runtime: Runtime, admin: InitResult, project_id: str, receiver: Receiver
) -> None:
    gone = await add_endpoint(runtime, project_id, receiver.url("/gone"))
    await add_endpoint(runtime, project_id, receiver.url("/ok"))
    await _events(runtime, project_id, 1)
    await endpoints.delete_endpoint(runtime, project_id, gone, actor="test")
    claims = await dl.claim_due(runtime, limit=10, **CLAIM)
    jobs = await dl.prepare_many(runtime, claims)
    assert [j.url for j in jobs if j is not None] == [receiver.url("/ok")]
    statuses = {d.endpoint_id: d.status for d in await deliveries(runtime)}
    assert statuses[gone] == "cancelled"


async def test_a_crash_between_send_and_record_loses_nothing(
    runtime: Runtime,
    admin: InitResult,
    project_id: str,
    receiver: Receiver,
    clock: FrozenClock,
    settings: Settings,
    worker: DeliveryWorker,
) -> None:
    for i in range(3):
        await add_endpoint(runtime, project_id, receiver.url(f"/e{i}"))
    await _events(runtime, project_id, 2)
    claims = await dl.claim_due(runtime, limit=10, **CLAIM)
    await _send_all(settings, await dl.prepare_many(runtime, claims))  # then "kill -9"
    assert len(receiver.requests) == 6
    assert await worker.drain() == 0  # leased: nothing to do yet
    clock.advance(25)
    assert await worker.drain() == 6
    assert {d.status for d in await deliveries(runtime)} == {"succeeded"}
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert len(ids) == 12
    assert all(ids.count(i) == 6 for i in set(ids))  # 2 messages, each 3 endpoints x twice


async def test_a_batch_whose_write_fails_is_sent_again_whole(
    runtime: Runtime,
    admin: InitResult,
    project_id: str,
    receiver: Receiver,
    clock: FrozenClock,
    settings: Settings,
    worker: DeliveryWorker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for i in range(3):
        await add_endpoint(runtime, project_id, receiver.url(f"/e{i}"))
    await _events(runtime, project_id, 1)
    claims = await dl.claim_due(runtime, limit=10, **CLAIM)
    outcomes = await _send_all(settings, await dl.prepare_many(runtime, claims))
    real = dl._attempt_row
    calls = 0

    def failing(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 3:  # the last of the batch: the deliveries are already updated
            raise RuntimeError("database went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(dl, "_attempt_row", failing)
    with pytest.raises(RuntimeError):
        await dl.finish_many(runtime, outcomes, random.Random(1))
    monkeypatch.setattr(dl, "_attempt_row", real)
    # All or nothing: no attempt recorded, every delivery still pending and leased.
    for d in await deliveries(runtime):
        assert (d.status, d.attempt_count, d.claim_token is not None) == ("pending", 0, True)
        assert await attempts(runtime, d.id) == []
    clock.advance(25)
    assert await worker.drain() == 3
    assert {d.status for d in await deliveries(runtime)} == {"succeeded"}
    assert len(receiver.requests) == 6


async def test_a_lost_lease_in_a_batch_only_affects_that_delivery(
    runtime: Runtime,
    admin: InitResult,
    project_id: str,
    receiver: Receiver,
    clock: FrozenClock,
    settings: Settings,
) -> None:
    for i in range(2):
        await add_endpoint(runtime, project_id, receiver.url(f"/e{i}"))
    await _events(runtime, project_id, 1)
    claims = await dl.claim_due(runtime, limit=1, **CLAIM)  # a slow worker takes one
    slow_jobs = await dl.prepare_many(runtime, claims)
    clock.advance(25)  # its lease expires; another worker takes both
    new = {c.delivery_id: c for c in await dl.claim_due(runtime, limit=10, **CLAIM)}
    retaken = new.pop(claims[0].delivery_id)
    others = list(new.values())
    jobs = slow_jobs + await dl.prepare_many(runtime, others)
    late = await _send_all(settings, jobs)
    await dl.finish_many(runtime, late, random.Random(1))
    by_id = {d.id: d for d in await deliveries(runtime)}
    # The slow worker's attempt is recorded, but the new owner keeps the delivery.
    assert (by_id[retaken.delivery_id].status, by_id[retaken.delivery_id].claim_token) == (
        "pending",
        retaken.token,
    )
    assert by_id[others[0].delivery_id].status == "succeeded"
    assert len(await attempts(runtime, retaken.delivery_id)) == 1


async def test_a_round_records_and_claims_in_one_transaction(
    runtime: Runtime, admin: InitResult, project_id: str, receiver: Receiver, settings: Settings
) -> None:
    for i in range(2):
        await add_endpoint(runtime, project_id, receiver.url(f"/e{i}"))
    await _events(runtime, project_id, 2)
    first = await dl.claim_due(runtime, limit=2, **CLAIM)
    outcomes = await _send_all(settings, await dl.prepare_many(runtime, first))
    commits: list[object] = []
    event.listen(runtime.db.sync_engine, "commit", commits.append)
    second = await dl.record_and_claim(runtime, outcomes, random.Random(1), limit=10, **CLAIM)
    assert len(commits) == 1
    assert {c.delivery_id for c in second}.isdisjoint(c.delivery_id for c in first)
    assert len(second) == 2
    by_id = {d.id: d for d in await deliveries(runtime)}
    for claim in first:
        assert by_id[claim.delivery_id].status == "succeeded"
        assert len(await attempts(runtime, claim.delivery_id)) == 1
    for claim in second:
        assert by_id[claim.delivery_id].claim_token == claim.token


async def test_a_round_whose_claim_fails_records_nothing(
    runtime: Runtime,
    admin: InitResult,
    project_id: str,
    receiver: Receiver,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for i in range(2):
        await add_endpoint(runtime, project_id, receiver.url(f"/e{i}"))
    await _events(runtime, project_id, 2)
    first = await dl.claim_due(runtime, limit=2, **CLAIM)
    outcomes = await _send_all(settings, await dl.prepare_many(runtime, first))

    async def failing(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("database went away")

    monkeypatch.setattr(dl, "_claim_in", failing)
    with pytest.raises(RuntimeError):
        await dl.record_and_claim(runtime, outcomes, random.Random(1), limit=10, **CLAIM)
    # All or nothing: the first claims still leased and unrecorded, nothing else taken.
    tokens = {c.delivery_id: c.token for c in first}
    for d in await deliveries(runtime):
        assert d.status == "pending"
        assert d.claim_token == tokens.get(d.id)
        assert await attempts(runtime, d.id) == []


async def test_the_claim_re_checks_rows_by_primary_key(runtime: Runtime) -> None:
    """SQLite planned the re-check on the (status, next_attempt_at) index and walked
    every pending delivery to claim a few; the re-check must leave that index alone."""
    if runtime.db.dialect.name != "sqlite":
        pytest.skip("a SQLite query plan")
    statement = (
        update(WebhookDelivery)
        .where(WebhookDelivery.id.in_(["a", "b"]), dl._due(utc_from_ts(0), by_primary_key=True))
        .values(claim_token="t")
    )
    compiled = statement.compile(runtime.db.sync_engine, compile_kwargs={"literal_binds": True})
    async with runtime.db.connect() as conn:
        plan = (await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}")).all()
    details = " ".join(str(row[-1]) for row in plan)
    assert "ix_webhook_deliveries_due" not in details
    assert "PRIMARY KEY" in details or "sqlite_autoindex" in details


async def test_a_success_beside_a_410_for_the_same_endpoint_stays_a_success(
    runtime: Runtime, admin: InitResult, project_id: str, receiver: Receiver
) -> None:
    endpoint_id = await add_endpoint(runtime, project_id, receiver.url("/e"))
    await _events(runtime, project_id, 3)
    claims = await dl.claim_due(runtime, limit=2, **CLAIM)
    ok, gone = await dl.prepare_many(runtime, claims)
    assert ok is not None
    assert gone is not None
    await dl.finish_many(
        runtime,
        [
            (gone, AttemptResult(gone.url, 410, 1.0, "", None, None)),
            (ok, AttemptResult(ok.url, 200, 1.0, "", None, None)),
        ],
        random.Random(1),
    )
    statuses = sorted(d.status for d in await deliveries(runtime))
    # The third, never sent, is cancelled with the endpoint.
    assert statuses == ["cancelled", "failed", "succeeded"]
    async with runtime.sessions() as session:
        endpoint = await session.get(WebhookEndpoint, endpoint_id)
    assert endpoint is not None
    assert (endpoint.enabled, endpoint.disabled_reason) == (False, "gone")
