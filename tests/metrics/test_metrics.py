"""``GET /metrics`` (CONTRACT §11): Prometheus text for a root key or the bearer token in
``KEYGUARD_METRICS_TOKEN``, else the usual 401; names start with ``keyguard_``; checks
counted by door and result code, with latency, cache hit ratio, rate-limit refusals and
the webhook outbox's depth and age."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from helpers import POLL_SESSION, bearer, create_key
from keyguard.runtime import Runtime
from webhook_helpers import add_endpoint

TOKEN = "metrics-scraper-token-0123456789"


@pytest.fixture
def with_token(runtime: Runtime) -> None:
    runtime.settings = runtime.settings.model_copy(update={"metrics_token": SecretStr(TOKEN)})


def _families(text: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def _sample(families: dict[str, Any], name: str, **labels: str) -> float:
    family = families[name]
    for sample in family.samples:
        named = sample.name in (name, f"{name}_total")
        if named and all(sample.labels.get(k) == v for k, v in labels.items()):
            return float(sample.value)
    return 0.0


async def test_without_credentials_it_is_401(client: httpx.AsyncClient, with_token: None) -> None:
    r = await client.get("/metrics")
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "credentials_missing"


@pytest.mark.parametrize("value", [TOKEN + "x", TOKEN[:-1], "Bearer", TOKEN.upper()])
async def test_a_wrong_token_is_401(
    client: httpx.AsyncClient, with_token: None, value: str
) -> None:
    r = await client.get("/metrics", headers=bearer(value))
    assert r.status_code == 401, r.text
    assert TOKEN not in r.text


async def test_a_project_key_is_refused(
    client: httpx.AsyncClient, root_headers: dict[str, str], project_id: str, with_token: None
) -> None:
    key = await create_key(client, root_headers, project_id)
    r = await client.get("/metrics", headers=bearer(key["key"]))
    assert r.status_code == 403
    assert r.json()["code"] == "root_key_required"


async def test_no_token_is_configured_by_default(client: httpx.AsyncClient) -> None:
    # Without KEYGUARD_METRICS_TOKEN, no bearer value opens it (not even an empty one).
    r = await client.get("/metrics", headers={"Authorization": "Bearer "})
    assert r.status_code == 401


async def test_the_token_and_a_root_key_read_the_same_metrics(
    client: httpx.AsyncClient, root_headers: dict[str, str], with_token: None
) -> None:
    for headers in (bearer(TOKEN), root_headers):
        r = await client.get("/metrics", headers=headers)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
        families = _families(r.text)
        assert families
        assert all(name.startswith("keyguard_") for name in families)


async def test_checks_are_counted_by_door_and_code(
    client: httpx.AsyncClient,
    root_headers: dict[str, str],
    project_id: str,
    runtime: Runtime,
) -> None:
    limit = {"limit": 1, "period_seconds": 60}
    key = await create_key(client, root_headers, project_id, rate_limit=limit)

    async def poll(value: str) -> int:
        r = await client.post("/v1/sessions", json=POLL_SESSION, headers=bearer(value))
        return r.status_code

    assert await poll(key["key"]) == 201
    assert await poll(key["key"]) == 429
    assert await poll(key["key"][:-4] + "AAAA") == 401
    verified = await client.post("/v1/keys/verify", json={"key": key["key"]}, headers=root_headers)
    assert verified.json()["code"] == "rate_limited"

    families = _families((await client.get("/metrics", headers=root_headers)).text)
    assert _sample(families, "keyguard_checks", door="api", code="ok") >= 2  # root + the key
    assert _sample(families, "keyguard_checks", door="api", code="rate_limited") == 1
    assert _sample(families, "keyguard_checks", door="api", code="invalid_key") == 1
    assert _sample(families, "keyguard_checks", door="verify", code="rate_limited") == 1
    assert _sample(families, "keyguard_rate_limit_refusals", door="api") == 1
    assert _sample(families, "keyguard_rate_limit_refusals", door="verify") == 1
    latency = families["keyguard_check_duration_seconds"]
    counts = {s.labels["door"]: s.value for s in latency.samples if s.name.endswith("_count")}
    assert counts["verify"] == 1
    assert counts["api"] == sum(
        s.value for s in families["keyguard_checks"].samples if s.labels["door"] == "api"
    )
    ratio = _sample(families, "keyguard_key_cache_hit_ratio")
    assert 0.0 <= ratio <= 1.0


async def test_the_outbox_depth_and_age_are_reported(
    client: httpx.AsyncClient,
    root_headers: dict[str, str],
    project_id: str,
    runtime: Runtime,
    clock: Any,
) -> None:
    families = _families((await client.get("/metrics", headers=root_headers)).text)
    assert _sample(families, "keyguard_webhook_outbox_depth") == 0
    assert _sample(families, "keyguard_webhook_outbox_oldest_age_seconds") == 0
    await add_endpoint(runtime, project_id, "https://hooks.example.com/in")
    await create_key(client, root_headers, project_id)  # key.created: one delivery
    clock.advance(90)
    families = _families((await client.get("/metrics", headers=root_headers)).text)
    assert _sample(families, "keyguard_webhook_outbox_depth") == 1
    assert _sample(families, "keyguard_webhook_outbox_oldest_age_seconds") == pytest.approx(90)
