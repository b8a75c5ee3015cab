"""Registration resolves host names (webhook endpoints and session ``webhook_url``): a
name with any forbidden address is refused with 422 ``ssrf_blocked``, a name that does
not resolve yet is accepted. DNS is the fake ``dns`` fixture, put on the runtime, which
the app and the worker use."""

from __future__ import annotations

from typing import Any

import httpx

from keyguard.runtime import Runtime
from keyguard.webhooks.worker import DeliveryWorker
from webhook_helpers import FakeDns, Receiver, attempts, deliveries, project_key


def _no_private(runtime: Runtime) -> None:
    runtime.settings = runtime.settings.model_copy(update={"webhook_allow_private": []})


async def _register(
    client: httpx.AsyncClient, root: dict[str, str], project_id: str, url: str
) -> httpx.Response:
    body = {"url": url, "events": ["*"]}
    return await client.post(f"/v1/projects/{project_id}/webhooks", json=body, headers=root)


async def _new_session(client: httpx.AsyncClient, key: str, url: str) -> httpx.Response:
    body: dict[str, Any] = {"delivery_mode": "webhook", "webhook_url": url}
    return await client.post("/v1/sessions", json=body, headers={"Authorization": f"Bearer {key}"})


async def test_an_endpoint_whose_name_resolves_to_loopback_is_refused(
    client: httpx.AsyncClient,
    runtime: Runtime,
    root_headers: dict[str, str],
    project_id: str,
    dns: FakeDns,
) -> None:
    _no_private(runtime)
    dns.answers["runsc"] = ["127.0.0.1"]
    dns.answers["mixed.example.com"] = ["93.184.215.14", "10.1.2.3"]
    for url in ("https://runsc/in", "https://mixed.example.com/in"):
        r = await _register(client, root_headers, project_id, url)
        assert (r.status_code, r.json()["code"]) == (422, "ssrf_blocked"), url
        assert "127.0.0.1" not in r.text
        assert "10.1.2.3" not in r.text
    assert dns.asked == ["runsc", "mixed.example.com"]
    listed = await client.get(f"/v1/projects/{project_id}/webhooks", headers=root_headers)
    assert listed.json() == []


async def test_allow_private_is_respected_at_registration(
    client: httpx.AsyncClient, root_headers: dict[str, str], project_id: str, dns: FakeDns
) -> None:
    # The fixtures allow 127.0.0.0/8 (local development) and nothing else.
    dns.answers |= {"dev.test": ["127.0.0.1"], "lan.test": ["192.168.1.20"]}
    dev = await _register(client, root_headers, project_id, "http://dev.test:8080/in")
    assert dev.status_code == 201, dev.text
    lan = await _register(client, root_headers, project_id, "https://lan.test/in")
    assert (lan.status_code, lan.json()["code"]) == (422, "ssrf_blocked")


async def test_public_and_not_yet_resolving_names_are_accepted(
    client: httpx.AsyncClient,
    runtime: Runtime,
    root_headers: dict[str, str],
    project_id: str,
    dns: FakeDns,
) -> None:
    _no_private(runtime)
    dns.answers["hooks.example.com"] = ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]
    for url in ("https://hooks.example.com/in", "https://not-yet.example.com/in"):
        r = await _register(client, root_headers, project_id, url)
        assert r.status_code == 201, r.text
    assert dns.asked == ["hooks.example.com", "not-yet.example.com"]


async def test_a_session_webhook_url_resolving_to_a_private_address_is_refused(
    client: httpx.AsyncClient,
    runtime: Runtime,
    root_headers: dict[str, str],
    project_id: str,
    dns: FakeDns,
) -> None:
    _no_private(runtime)
    key = await project_key(client, root_headers, project_id)
    dns.answers |= {"vm": ["127.0.0.1"], "meta.example.com": ["169.254.169.254"]}
    for url in ("https://vm/hook", "https://meta.example.com/hook"):
        r = await _new_session(client, key, url)
        assert (r.status_code, r.json()["code"]) == (422, "ssrf_blocked"), url
    later = await _new_session(client, key, "https://later.example.com/hook")
    assert later.status_code == 201, later.text


async def test_the_worker_resolves_through_the_same_seam(
    client: httpx.AsyncClient,
    runtime: Runtime,
    root_headers: dict[str, str],
    project_id: str,
    dns: FakeDns,
    receiver: Receiver,
) -> None:
    # Registered by name, sent to the address the (fake) DNS gave: the name goes in Host.
    dns.answers["hooks.dev.test"] = ["127.0.0.1"]
    url = f"http://hooks.dev.test:{receiver.port}/in"
    assert (await _register(client, root_headers, project_id, url)).status_code == 201
    await project_key(client, root_headers, project_id)  # key.created
    await DeliveryWorker(runtime).run_once()
    [seen] = receiver.seen("/in")
    assert seen.headers["host"] == f"hooks.dev.test:{receiver.port}"
    # The name moved into a forbidden range after registration: the send refuses it.
    dns.answers["hooks.dev.test"] = ["10.0.0.5"]
    await project_key(client, root_headers, project_id)
    await DeliveryWorker(runtime).run_once()
    errors = [a.error for d in await deliveries(runtime) for a in await attempts(runtime, d.id)]
    assert sorted(errors, key=str) == [None, "ssrf_blocked"]  # in either order
    assert len(receiver.seen("/in")) == 1
