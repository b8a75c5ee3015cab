"""Retention: finished webhook history and long-expired sessions' photos go; nothing else.

Driven by the injected clock; ``prune`` is the sweep the server runs every hour.
"""

from __future__ import annotations

import asyncio
import io
from typing import Any

import anyio
import httpx
import pytest
from sqlalchemy import delete, select, text, update

from keyguard.accounts.service import InitResult
from keyguard.audit import service as audit
from keyguard.audit.models import AuditEvent
from keyguard.clock import FrozenClock
from keyguard.errors import NotFound
from keyguard.keys import service as keys
from keyguard.retention.service import RetentionSweeper, prune
from keyguard.runtime import Runtime
from keyguard.uploads.models import Photo, UploadSession
from keyguard.uploads.store import LocalFileStore
from keyguard.webhooks import endpoints
from keyguard.webhooks.models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookMessage,
)
from keyguard.webhooks.worker import DeliveryWorker
from webhook_helpers import (
    PNG,
    Receiver,
    Reply,
    add_endpoint,
    attempts,
    deliveries,
    messages,
    project_key,
)

DAY = 86_400


def _store(runtime: Runtime) -> LocalFileStore:
    return LocalFileStore(runtime.settings.data_dir / "photos")


def _retain(runtime: Runtime, **days: int) -> None:
    runtime.settings = runtime.settings.model_copy(update=days)


async def _key_event(runtime: Runtime, project_id: str) -> None:
    await keys.create_key(runtime, project_id, keys.KeySpec(name="k"), actor="test")


async def _delivered(
    runtime: Runtime, project_id: str, receiver: Receiver, worker: DeliveryWorker, events: int = 1
) -> str:
    """An endpoint that has received ``events`` key events; its id."""
    endpoint = await add_endpoint(runtime, project_id, receiver.url("/ok"))
    for _ in range(events):
        await _key_event(runtime, project_id)
    await worker.drain()
    return endpoint


async def test_finished_history_past_retention_goes_and_pending_events_stay(
    runtime: Runtime,
    admin: InitResult,
    project_id: str,
    receiver: Receiver,
    worker: DeliveryWorker,
    clock: FrozenClock,
) -> None:
    ok = await _delivered(runtime, project_id, receiver, worker)
    [delivered] = await deliveries(runtime)
    assert delivered.status == "succeeded"
    assert await attempts(runtime, delivered.id)

    # A second event to an endpoint that keeps failing: still being retried 91 days on.
    receiver.on("/down", Reply(503))
    down = await add_endpoint(runtime, project_id, receiver.url("/down"))
    async with runtime.transaction() as db:
        ok_row = await db.get(WebhookEndpoint, ok)
        assert ok_row is not None
        ok_row.enabled = False  # only the failing endpoint receives the second event
    await _key_event(runtime, project_id)
    await worker.drain()
    pending = [d for d in await deliveries(runtime) if d.endpoint_id == down]
    assert [d.status for d in pending] == ["pending"]

    _retain(runtime, webhook_retention_days=90)
    clock.advance(89 * DAY)
    assert (await prune(runtime, _store(runtime))).webhook_messages == 0
    clock.advance(2 * DAY)
    report = await prune(runtime, _store(runtime))

    assert report.webhook_messages == 1
    [left] = await deliveries(runtime)
    assert (left.endpoint_id, left.status) == (down, "pending")
    assert len(await messages(runtime)) == 1
    assert await attempts(runtime, delivered.id) == []
    assert await attempts(runtime, left.id), "the pending delivery keeps its attempts"


async def test_a_large_backlog_goes_in_batches(
    runtime: Runtime,
    admin: InitResult,
    project_id: str,
    receiver: Receiver,
    worker: DeliveryWorker,
    clock: FrozenClock,
) -> None:
    await _delivered(runtime, project_id, receiver, worker, events=5)
    _retain(runtime, webhook_retention_days=1)
    clock.advance(2 * DAY)
    report = await prune(runtime, _store(runtime), batch=2)
    assert report.webhook_messages == 5
    assert await messages(runtime) == []
    assert await deliveries(runtime) == []


async def test_zero_days_keeps_webhook_history_for_ever(
    runtime: Runtime,
    admin: InitResult,
    project_id: str,
    receiver: Receiver,
    worker: DeliveryWorker,
    clock: FrozenClock,
) -> None:
    await _delivered(runtime, project_id, receiver, worker)
    _retain(runtime, webhook_retention_days=0)
    clock.advance(3650 * DAY)
    assert (await prune(runtime, _store(runtime))).webhook_messages == 0
    assert len(await messages(runtime)) == 1


async def _session_with_photo(
    client: httpx.AsyncClient, root_headers: dict[str, str], project_id: str, **session: Any
) -> tuple[str, str]:
    """A new session (poll mode unless ``session`` says otherwise) holding one photo."""
    key = await project_key(client, root_headers, project_id)
    r = await client.post(
        "/v1/sessions",
        json={"delivery_mode": "poll", **session},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert r.status_code == 201, r.text
    session_id = r.json()["id"]
    r = await client.post(
        f"/v1/sessions/{session_id}/photos",
        files={"file": ("a.png", io.BytesIO(PNG), "image/png")},
    )
    assert r.status_code == 201, r.text
    return session_id, r.json()["id"]


async def test_photos_of_long_expired_sessions_go_rows_files_and_all(
    client: httpx.AsyncClient,
    runtime: Runtime,
    root_headers: dict[str, str],
    project_id: str,
    clock: FrozenClock,
) -> None:
    old_session, old_photo = await _session_with_photo(
        client, root_headers, project_id, expires_in=3600
    )
    clock.advance(4 * DAY)
    # Expired a day ago: within the three days of retention below.
    recent_session, recent_photo = await _session_with_photo(
        client, root_headers, project_id, expires_in=3600
    )
    clock.advance(DAY)
    new_session, new_photo = await _session_with_photo(
        client, root_headers, project_id, expires_in=3600
    )
    store = _store(runtime)
    assert await store.get(f"{old_session}/{old_photo}") == PNG

    assert (await prune(runtime, store)).photos == 0, "0 days (the default) keeps photos"
    _retain(runtime, photo_retention_days=3)
    report = await prune(runtime, store)

    assert report.photos == 1
    async with runtime.sessions() as db:
        assert await db.get(Photo, old_photo) is None
        assert await db.get(Photo, new_photo) is not None
        assert await db.get(Photo, recent_photo) is not None
        assert await db.get(UploadSession, old_session) is not None, "the session row stays"
        [event] = (
            await db.execute(
                select(AuditEvent).where(AuditEvent.action == "session.photos_deleted")
            )
        ).scalars()
        assert (event.target, event.actor) == (old_session, "keyguard")
        assert await audit.verify_chain(db) == []
    assert not (runtime.settings.data_dir / "photos" / old_session / old_photo).exists()
    assert await store.get(f"{new_session}/{new_photo}") == PNG
    assert await store.get(f"{recent_session}/{recent_photo}") == PNG


async def test_the_sweeper_sweeps_at_start_and_stops_cleanly(
    runtime: Runtime,
    admin: InitResult,
    project_id: str,
    receiver: Receiver,
    worker: DeliveryWorker,
    clock: FrozenClock,
) -> None:
    await _delivered(runtime, project_id, receiver, worker)
    _retain(runtime, webhook_retention_days=1)
    clock.advance(2 * DAY)
    async with RetentionSweeper(runtime, _store(runtime)).running():
        for _ in range(1000):  # the first sweep runs at once; allow a loaded machine 10 s
            if not await messages(runtime):
                break
            await anyio.sleep(0.01)
        else:
            raise AssertionError("the start-up sweep did not run")


async def test_a_redelivered_old_message_keeps_its_history_for_the_full_period(
    runtime: Runtime,
    admin: InitResult,
    project_id: str,
    receiver: Receiver,
    worker: DeliveryWorker,
    clock: FrozenClock,
) -> None:
    endpoint = await _delivered(runtime, project_id, receiver, worker)
    [first] = await deliveries(runtime)
    _retain(runtime, webhook_retention_days=90)
    clock.advance(89 * DAY)
    await endpoints.redeliver(runtime, project_id, endpoint, first.id, actor="test")
    await worker.drain()
    clock.advance(2 * DAY)  # the message is 91 days old; its redelivery is 2 days old
    assert (await prune(runtime, _store(runtime))).webhook_messages == 0
    assert len(await deliveries(runtime)) == 2
    clock.advance(89 * DAY)
    assert (await prune(runtime, _store(runtime))).webhook_messages == 1
    assert await deliveries(runtime) == []
    with pytest.raises(NotFound):  # a pruned delivery can no longer be redelivered
        await endpoints.redeliver(runtime, project_id, endpoint, first.id, actor="test")


@pytest.mark.postgres
async def test_a_redelivery_racing_the_sweep_gets_404_not_a_foreign_key_error(
    runtime: Runtime,
    admin: InitResult,
    project_id: str,
    receiver: Receiver,
    worker: DeliveryWorker,
) -> None:
    if runtime.db.dialect.name != "postgresql":
        pytest.skip("row locks: PostgreSQL only (SQLite serialises every write)")
    endpoint = await _delivered(runtime, project_id, receiver, worker)
    [delivery] = await deliveries(runtime)
    # The sweep's transaction, held open: the message locked, its rows being deleted.
    async with runtime.sessions.begin() as sweep:
        await sweep.execute(
            select(WebhookMessage).where(WebhookMessage.id == delivery.message_id).with_for_update()
        )
        sweep_pid = (await sweep.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        redelivery = asyncio.create_task(
            endpoints.redeliver(runtime, project_id, endpoint, delivery.id, actor="test")
        )
        # Wait until PostgreSQL reports a backend blocked by the sweep's transaction.
        blocked = text(
            "SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))"
        )
        with anyio.fail_after(10):  # allow a loaded machine 10 s
            while True:
                assert not redelivery.done(), "the redelivery waits for the sweep's lock"
                async with runtime.sessions() as probe:
                    if (await probe.execute(blocked, {"pid": sweep_pid})).scalar_one():
                        break
                await anyio.sleep(0.01)
        assert not redelivery.done(), "the redelivery waits for the sweep's lock"
        await sweep.execute(delete(WebhookAttempt))
        await sweep.execute(delete(WebhookDelivery))
        await sweep.execute(delete(WebhookMessage))
    with pytest.raises(NotFound):
        await redelivery


async def test_photos_stay_while_their_webhooks_are_being_retried(
    client: httpx.AsyncClient,
    runtime: Runtime,
    root_headers: dict[str, str],
    project_id: str,
    receiver: Receiver,
    clock: FrozenClock,
) -> None:
    await _session_with_photo(
        client,
        root_headers,
        project_id,
        delivery_mode="webhook",
        webhook_url=receiver.url("/hook"),
        expires_in=3600,
    )
    _retain(runtime, photo_retention_days=1)
    clock.advance(3 * DAY)  # the photo.uploaded delivery has not been sent: still pending
    assert (await prune(runtime, _store(runtime))).photos == 0
    async with runtime.transaction() as db:
        await db.execute(update(WebhookDelivery).values(status="failed"))
    assert (await prune(runtime, _store(runtime))).photos == 1
