"""The webhook management API: endpoints, deliveries with attempts, redelivery, secrets."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

import httpx
from standardwebhooks import Webhook

from keyguard.clock import FrozenClock
from keyguard.runtime import Runtime
from keyguard.webhooks.worker import DeliveryWorker
from webhook_helpers import Receiver, Reply, create_project_key


async def _endpoint(
    client: httpx.AsyncClient, headers: dict[str, str], project_id: str, **body: Any
) -> dict[str, Any]:
    body.setdefault("events", ["*"])
    r = await client.post(f"/v1/projects/{project_id}/webhooks", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


async def test_an_endpoint_is_registered_listed_read_and_deleted(
    client: httpx.AsyncClient, root_headers: dict[str, str], project_id: str
) -> None:
    created = await _endpoint(
        client, root_headers, project_id, url="https://hooks.example.com/in", events=["key.revoked"]
    )
    assert created["id"].startswith("whep_")
    assert (created["enabled"], created["events"]) == (True, ["key.revoked"])
    base = f"/v1/projects/{project_id}/webhooks"
    listed = (await client.get(base, headers=root_headers)).json()
    assert [e["id"] for e in listed] == [created["id"]]
    got = await client.get(f"{base}/{created['id']}", headers=root_headers)
    assert got.json() == created
    assert (await client.delete(f"{base}/{created['id']}", headers=root_headers)).status_code == 204
    gone = await client.get(f"{base}/{created['id']}", headers=root_headers)
    assert (gone.status_code, gone.json()["code"]) == (404, "not_found")
    assert (await client.get(base, headers=root_headers)).json() == []


REFUSED_URLS = [
    ("not a url", "invalid_url"),
    ("ftp://hooks.example.com/", "invalid_url"),
    ("https://user:pw@hooks.example.com/", "invalid_url"),
    ("https://0x7f.1/", "invalid_url"),
    ("http://8.8.8.8/hook", "https_required"),
    ("https://10.0.0.1/", "ssrf_blocked"),
    ("https://169.254.169.254/latest/meta-data/", "ssrf_blocked"),
    ("https://[::ffff:10.0.0.1]/", "ssrf_blocked"),
    ("https://100.64.0.1/", "ssrf_blocked"),
    ("https://192.0.2.1/", "ssrf_blocked"),
    ("https://224.0.0.1/", "ssrf_blocked"),
    ("https://0.0.0.0/", "ssrf_blocked"),
]


async def test_unsafe_or_malformed_urls_are_refused_at_registration(
    client: httpx.AsyncClient, root_headers: dict[str, str], project_id: str
) -> None:
    # One test, many URLs: the set-up (a fresh database) costs more than each request.
    for url, code in REFUSED_URLS:
        r = await client.post(
            f"/v1/projects/{project_id}/webhooks",
            json={"url": url, "events": ["*"]},
            headers=root_headers,
        )
        assert r.status_code == 422, url
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == code, url
    listed = await client.get(f"/v1/projects/{project_id}/webhooks", headers=root_headers)
    assert listed.json() == []


async def test_a_well_formed_name_that_does_not_resolve_yet_is_accepted(
    client: httpx.AsyncClient, root_headers: dict[str, str], project_id: str
) -> None:
    await _endpoint(client, root_headers, project_id, url="https://not-yet.invalid/hook")


BAD_BODIES: list[Any] = [
    {"url": "https://a.example.com/", "events": ["key.exploded"]},
    {"url": "https://a.example.com/", "events": []},
    {"url": "https://a.example.com/", "events": ["*"], "secret": "mine"},
    {"url": 5, "events": ["*"]},
    {"events": ["*"]},
    ["https://a.example.com/"],
]


async def test_bad_endpoint_bodies_are_422(
    client: httpx.AsyncClient, root_headers: dict[str, str], project_id: str
) -> None:
    for body in BAD_BODIES:
        r = await client.post(
            f"/v1/projects/{project_id}/webhooks", json=body, headers=root_headers
        )
        assert r.status_code == 422, body
        assert r.json()["code"] == "validation_failed"


async def test_webhooks_need_a_root_key_and_an_existing_project(
    client: httpx.AsyncClient, root_headers: dict[str, str], project_id: str
) -> None:
    body = {"url": "https://a.example.com/", "events": ["*"]}
    anonymous = await client.post(f"/v1/projects/{project_id}/webhooks", json=body)
    assert anonymous.status_code == 401
    missing = await client.post(
        "/v1/projects/proj_doesnotexist0000/webhooks", json=body, headers=root_headers
    )
    assert missing.status_code == 404


async def test_deliveries_are_listed_with_every_attempt_and_can_be_redelivered(
    client: httpx.AsyncClient,
    root_headers: dict[str, str],
    project_id: str,
    receiver: Receiver,
    worker: DeliveryWorker,
    clock: FrozenClock,
) -> None:
    answers = iter([Reply(500, body=b"x" * 5000), Reply(200, body=b"ok"), Reply(204, body=b"")])
    url = receiver.on("/in", lambda _: next(answers))
    endpoint = await _endpoint(client, root_headers, project_id, url=url)
    await create_project_key(client, root_headers, project_id)
    await worker.run_once()
    clock.advance(10)
    await worker.run_once()
    base = f"/v1/projects/{project_id}/webhooks/{endpoint['id']}/deliveries"
    [delivery] = (await client.get(base, headers=root_headers)).json()["data"]
    assert delivery["event_type"] == "key.created"
    assert (delivery["status"], delivery["attempt_count"]) == ("succeeded", 2)
    first, second = delivery["attempts"]
    assert (first["status_code"], second["status_code"]) == (500, 200)
    assert len(first["response_body"]) == 1024  # the stored excerpt
    assert (first["error"], second["error"]) == ("response_truncated", None)  # 5000 > 4 KiB
    assert first["latency_ms"] > 0
    again = await client.post(f"{base}/{delivery['id']}/redeliver", headers=root_headers)
    assert again.status_code == 202
    assert again.json()["message_id"] == delivery["message_id"]
    assert again.json()["status"] == "pending"
    await worker.run_once()
    ids = {r.headers["webhook-id"] for r in receiver.requests}
    assert ids == {delivery["message_id"]}  # the same webhook-id: receivers dedupe
    assert len(receiver.requests) == 3
    missing = await client.post(f"{base}/whdl_nope/redeliver", headers=root_headers)
    assert missing.status_code == 404


async def test_an_oversized_answer_is_listed_as_succeeded_but_truncated(
    client: httpx.AsyncClient,
    root_headers: dict[str, str],
    project_id: str,
    receiver: Receiver,
    worker: DeliveryWorker,
) -> None:
    url = receiver.on("/in", Reply(200, body=b"<html>" + b"x" * 1_000_000))
    endpoint = await _endpoint(client, root_headers, project_id, url=url)
    await create_project_key(client, root_headers, project_id)
    await worker.run_once()
    base = f"/v1/projects/{project_id}/webhooks/{endpoint['id']}/deliveries"
    [delivery] = (await client.get(base, headers=root_headers)).json()["data"]
    assert (delivery["status"], delivery["last_error"]) == ("succeeded", None)
    [attempt] = delivery["attempts"]
    assert (attempt["status_code"], attempt["error"]) == (200, "response_truncated")
    assert attempt["response_body"].startswith("<html>xxx")


def _standard_ok(secret: str, seen_headers: dict[str, str], body: bytes) -> bool:
    try:
        Webhook(secret).verify(body, seen_headers)
    except Exception:
        return False
    return True


def _library_signature(secret: str, seen: Any) -> str:
    when = datetime.fromtimestamp(int(seen.headers["webhook-timestamp"]), UTC)
    return str(Webhook(secret).sign(seen.headers["webhook-id"], when, seen.body.decode()))


def _seed_ok(secret: str, body: bytes, header: str) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


async def test_rotation_sends_both_signatures_during_the_overlap(
    client: httpx.AsyncClient,
    runtime: Runtime,
    root_headers: dict[str, str],
    admin: Any,
    project_id: str,
    receiver: Receiver,
    worker: DeliveryWorker,
    clock: FrozenClock,
) -> None:
    old_secret = admin.project.webhook_secret
    await _endpoint(client, root_headers, project_id, url=receiver.url("/in"))
    rotate = f"/v1/projects/{project_id}/webhook-secret/rotate"
    r = await client.post(rotate, json={"overlap_seconds": 3600}, headers=root_headers)
    assert r.status_code == 201
    new_secret = r.json()["webhook_secret"]
    assert new_secret.startswith("whsec_")
    assert new_secret != old_secret
    assert len(base64.b64decode(new_secret.removeprefix("whsec_"))) >= 24

    await create_project_key(client, root_headers, project_id)
    await worker.run_once()
    seen = receiver.requests[-1]
    signatures = seen.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2
    assert all(s.startswith("v1,") for s in signatures)
    assert _standard_ok(new_secret, seen.headers, seen.body)
    assert _standard_ok(old_secret, seen.headers, seen.body)
    assert _seed_ok(new_secret, seen.body, seen.headers["x-aptr-signature"])

    clock.advance(3601)
    await create_project_key(client, root_headers, project_id)
    await worker.run_once()
    seen = receiver.requests[-1]
    # The clock moved an hour past real time, beyond the library's timestamp
    # tolerance: compare with the library's own signer instead.
    [only] = seen.headers["webhook-signature"].split(" ")
    assert only == _library_signature(new_secret, seen)
    assert only != _library_signature(old_secret, seen)

    # The secret is shown once: nothing else ever returns it.
    for path in (f"/v1/projects/{project_id}", f"/v1/projects/{project_id}/webhooks"):
        text = (await client.get(path, headers=root_headers)).text
        assert new_secret not in text
        assert old_secret not in text


async def test_rotating_the_secret_of_an_unknown_project_is_404(
    client: httpx.AsyncClient, root_headers: dict[str, str]
) -> None:
    r = await client.post("/v1/projects/proj_nope/webhook-secret/rotate", headers=root_headers)
    assert r.status_code == 404


async def test_a_disabled_endpoint_can_be_enabled_again(
    client: httpx.AsyncClient,
    root_headers: dict[str, str],
    project_id: str,
    receiver: Receiver,
    worker: DeliveryWorker,
) -> None:
    url = receiver.on("/gone", Reply(410))
    endpoint = await _endpoint(client, root_headers, project_id, url=url)
    await create_project_key(client, root_headers, project_id)
    await worker.run_once()
    base = f"/v1/projects/{project_id}/webhooks/{endpoint['id']}"
    got = (await client.get(base, headers=root_headers)).json()
    assert (got["enabled"], got["disabled_reason"]) == (False, "gone")
    [delivery] = (await client.get(f"{base}/deliveries", headers=root_headers)).json()["data"]
    refused = await client.post(
        f"{base}/deliveries/{delivery['id']}/redeliver", headers=root_headers
    )
    assert (refused.status_code, refused.json()["code"]) == (409, "endpoint_disabled")
    enabled = await client.post(f"{base}/enable", headers=root_headers)
    assert (enabled.json()["enabled"], enabled.json()["disabled_reason"]) == (True, None)
