"""Keyguard's own security events arrive as webhooks through the same outbox."""

from __future__ import annotations

from typing import Any

import httpx

from keyguard.webhooks.worker import DeliveryWorker
from webhook_helpers import Receiver


async def test_key_lifecycle_events_are_delivered_without_secrets(
    client: httpx.AsyncClient,
    root_headers: dict[str, str],
    project_id: str,
    receiver: Receiver,
    worker: DeliveryWorker,
) -> None:
    hooks = f"/v1/projects/{project_id}/webhooks"
    everything = {"url": receiver.url("/all"), "events": ["*"]}
    only_revoked = {"url": receiver.url("/revoked"), "events": ["key.revoked"]}
    for body in (everything, only_revoked):
        assert (await client.post(hooks, json=body, headers=root_headers)).status_code == 201

    created = await client.post(
        f"/v1/projects/{project_id}/keys",
        json={"name": "server", "environment": "live"},
        headers=root_headers,
    )
    key: dict[str, Any] = created.json()
    key_id = key["id"]
    steps = [
        ("PATCH", f"/v1/keys/{key_id}", {"ip_allowlist": ["203.0.113.0/24"]}),
        ("PATCH", f"/v1/keys/{key_id}", {"name": "renamed"}),
        ("POST", f"/v1/keys/{key_id}/regenerate", None),
        ("POST", f"/v1/keys/{key_id}/rotate", {"grace_seconds": 60}),
        ("DELETE", f"/v1/keys/{key_id}", None),
    ]
    secrets = [key["key"], key["secret"]]
    for method, path, body in steps:
        r = await client.request(method, path, json=body, headers=root_headers)
        assert r.status_code < 300, r.text
        answer = r.json() if r.content else {}
        secrets += [answer[f] for f in ("key", "secret") if f in answer]
    await worker.drain()

    # Deliveries run concurrently: compare as multisets, then look at each kind.
    events = [r.json() for r in receiver.seen("/all")]
    assert sorted(e["type"] for e in events) == [
        "key.created",
        "key.regenerated",
        "key.revoked",
        "key.rotated",
        "key.updated",
        "key.updated",
    ]
    assert all(e["data"]["key_id"] == key_id for e in events)
    updates = sorted(e["data"]["fields"] for e in events if e["type"] == "key.updated")
    assert updates == [["ip_allowlist"], ["name"]]
    [rotated] = [e for e in events if e["type"] == "key.rotated"]
    assert rotated["data"]["new_key_id"].startswith("aptr_live_")
    assert rotated["data"]["grace_seconds"] == 60
    assert [r.json()["type"] for r in receiver.seen("/revoked")] == ["key.revoked"]
    bodies = b"".join(r.body for r in receiver.requests).decode()
    for secret in secrets:
        assert secret not in bodies
    assert "whsec_" not in bodies


async def test_project_changes_outside_key_events_send_nothing(
    client: httpx.AsyncClient,
    root_headers: dict[str, str],
    project_id: str,
    receiver: Receiver,
    worker: DeliveryWorker,
) -> None:
    hooks = f"/v1/projects/{project_id}/webhooks"
    body = {"url": receiver.url("/all"), "events": ["*"]}
    assert (await client.post(hooks, json=body, headers=root_headers)).status_code == 201
    await client.post(f"/v1/projects/{project_id}/webhook-secret/rotate", headers=root_headers)
    await client.post(hooks, json=body, headers=root_headers)
    assert await worker.drain() == 0
