"""Deliveries to an upload session's own ``webhook_url`` (the seeds' main flow) are
listed with every attempt and redelivered, with the session's project key."""

from __future__ import annotations

import io
from typing import Any

import httpx

from keyguard.clock import FrozenClock
from keyguard.webhooks.worker import DeliveryWorker
from webhook_helpers import PNG, Receiver, Reply, project_key


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def _webhook_session(client: httpx.AsyncClient, key: str, url: str) -> str:
    r = await client.post(
        "/v1/sessions", json={"delivery_mode": "webhook", "webhook_url": url}, headers=_bearer(key)
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def _upload(client: httpx.AsyncClient, session_id: str) -> dict[str, Any]:
    r = await client.post(
        f"/v1/sessions/{session_id}/photos", files={"file": ("a.png", io.BytesIO(PNG), "image/png")}
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_a_sessions_own_deliveries_are_listed_with_attempts_and_redelivered(
    client: httpx.AsyncClient,
    root_headers: dict[str, str],
    project_id: str,
    receiver: Receiver,
    worker: DeliveryWorker,
    clock: FrozenClock,
) -> None:
    answers = iter([Reply(500, body=b"x" * 5000), Reply(200, body=b"ok"), Reply(204, body=b"")])
    url = receiver.on("/hook", lambda _: next(answers))
    # A project endpoint also gets photo.uploaded: its deliveries are not the session's.
    r = await client.post(
        f"/v1/projects/{project_id}/webhooks",
        json={"url": receiver.url("/endpoint"), "events": ["photo.uploaded"]},
        headers=root_headers,
    )
    assert r.status_code == 201, r.text
    key = await project_key(client, root_headers, project_id)
    session_id = await _webhook_session(client, key, url)
    photo = await _upload(client, session_id)
    await worker.run_once()
    clock.advance(10)
    await worker.run_once()

    base = f"/v1/sessions/{session_id}/deliveries"
    listed = await client.get(base, headers=_bearer(key))
    assert listed.status_code == 200, listed.text
    [delivery] = listed.json()["data"]
    assert delivery["event_type"] == "photo.uploaded"
    assert (delivery["status"], delivery["attempt_count"]) == ("succeeded", 2)
    first, second = delivery["attempts"]
    assert (first["status_code"], second["status_code"]) == (500, 200)
    assert len(first["response_body"]) == 1024  # truncated
    assert first["latency_ms"] > 0
    assert second["response_body"] == "ok"

    again = await client.post(f"{base}/{delivery['id']}/redeliver", headers=_bearer(key))
    assert again.status_code == 202, again.text
    assert (again.json()["message_id"], again.json()["status"]) == (
        delivery["message_id"],
        "pending",
    )
    await worker.run_once()
    hook = receiver.seen("/hook")
    assert len(hook) == 3
    assert {s.headers["webhook-id"] for s in hook} == {delivery["message_id"]}
    assert hook[-1].json()["data"]["photo"]["id"] == photo["id"]

    newest_first = (await client.get(base, headers=_bearer(key))).json()["data"]
    assert [d["id"] for d in newest_first] == [again.json()["id"], delivery["id"]]
    assert newest_first[0]["status"] == "succeeded"
    page = (await client.get(f"{base}?limit=1", headers=_bearer(key))).json()["data"]
    assert [d["id"] for d in page] == [again.json()["id"]]
    too_many = await client.get(f"{base}?limit=500", headers=_bearer(key))
    assert too_many.status_code == 422


async def test_session_deliveries_of_another_project_or_destination_are_not_found(
    client: httpx.AsyncClient,
    root_headers: dict[str, str],
    project_id: str,
    receiver: Receiver,
    worker: DeliveryWorker,
) -> None:
    r = await client.post(
        f"/v1/projects/{project_id}/webhooks",
        json={"url": receiver.url("/endpoint"), "events": ["photo.uploaded"]},
        headers=root_headers,
    )
    endpoint_id = r.json()["id"]
    key = await project_key(client, root_headers, project_id)
    session_id = await _webhook_session(client, key, receiver.url("/hook"))
    await _upload(client, session_id)
    await worker.run_once()
    base = f"/v1/sessions/{session_id}/deliveries"
    [delivery] = (await client.get(base, headers=_bearer(key))).json()["data"]

    other = await client.post("/v1/projects", json={"name": "other"}, headers=root_headers)
    assert other.status_code == 201, other.text
    other_key = await project_key(client, root_headers, other.json()["id"])
    for response in (
        await client.get(base, headers=_bearer(other_key)),
        await client.post(f"{base}/{delivery['id']}/redeliver", headers=_bearer(other_key)),
        await client.get("/v1/sessions/sess_nope/deliveries", headers=_bearer(key)),
        await client.post(f"{base}/whdl_nope/redeliver", headers=_bearer(key)),
    ):
        assert (response.status_code, response.json()["code"]) == (404, "not_found")

    # The endpoint's delivery of the same message is not the session's to redeliver.
    endpoint_deliveries = await client.get(
        f"/v1/projects/{project_id}/webhooks/{endpoint_id}/deliveries", headers=root_headers
    )
    [endpoint_delivery] = endpoint_deliveries.json()["data"]
    assert endpoint_delivery["message_id"] == delivery["message_id"]
    crossed = await client.post(f"{base}/{endpoint_delivery['id']}/redeliver", headers=_bearer(key))
    assert (crossed.status_code, crossed.json()["code"]) == (404, "not_found")
    # ... nor the other way round.
    crossed_back = await client.post(
        f"/v1/projects/{project_id}/webhooks/{endpoint_id}/deliveries/{delivery['id']}/redeliver",
        headers=root_headers,
    )
    assert crossed_back.status_code == 404
    assert (await client.get(base)).status_code == 401  # no key
    # A root key is not a project key: sessions belong to project keys.
    assert (await client.get(base, headers=root_headers)).status_code == 401
