"""The edge: one outer layer for every request, and the hot routes it serves itself.

The hot route must answer exactly what the application's route answers (same checks,
same refusals, same headers); every response, hot or not, refused or not, carries the
edge's headers.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from helpers import POLL_SESSION, bearer, create_key
from keyguard.errors import NotFound
from keyguard.server.edge import Edge, HotRoute

REQUEST_ID = re.compile(r"^[0-9a-f]{20}$")


async def _session(client: httpx.AsyncClient, root_headers: dict[str, str], project_id: str):
    key = await create_key(client, root_headers, project_id)
    created = await client.post("/v1/sessions", json=POLL_SESSION, headers=bearer(key["key"]))
    assert created.status_code == 201, created.text
    return key, created.json()


def _edge_headers_present(response: httpx.Response) -> None:
    assert REQUEST_ID.match(response.headers["x-request-id"]), response.headers
    assert response.headers["strict-transport-security"] == "max-age=63072000; includeSubDomains"
    assert response.headers.get_list("cache-control") == ["no-store"]


async def test_the_hot_route_answers_what_the_app_route_answers(client, root_headers, project_id):
    key, session = await _session(client, root_headers, project_id)
    hot = await client.get(f"/v1/sessions/{session['id']}", headers=bearer(key["key"]))
    # A GET with a body is not hot: the edge hands it to the application's route.
    routed = await client.request(
        "GET", f"/v1/sessions/{session['id']}", headers=bearer(key["key"]), content=b""
    )
    assert hot.status_code == routed.status_code == 200
    assert hot.json() == routed.json() == session
    assert hot.headers["content-type"] == routed.headers["content-type"] == "application/json"
    _edge_headers_present(hot)
    _edge_headers_present(routed)
    assert hot.headers["x-request-id"] != routed.headers["x-request-id"]


async def test_the_hot_route_serves_the_same_session_twice_from_its_serialised_copy(
    client, root_headers, project_id
):
    key, session = await _session(client, root_headers, project_id)
    first = await client.get(f"/v1/sessions/{session['id']}", headers=bearer(key["key"]))
    second = await client.get(f"/v1/sessions/{session['id']}", headers=bearer(key["key"]))
    assert first.content == second.content


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "credentials_missing"),
        ({"Authorization": "Bearer kg_live_nope"}, "invalid_key"),
    ],
)
async def test_the_hot_route_refuses_like_the_app(
    client, root_headers, project_id, headers: dict[str, str], code: str
):
    _, session = await _session(client, root_headers, project_id)
    r = await client.get(f"/v1/sessions/{session['id']}", headers=headers)
    assert (r.status_code, r.json()["code"]) == (401, code)
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"] == 'Bearer realm="keyguard"'
    _edge_headers_present(r)


async def test_another_projects_session_is_not_found_with_the_callers_rate_limit(
    client, root_headers, project_id
):
    _, session = await _session(client, root_headers, project_id)
    other = await client.post("/v1/projects", json={"name": "other"}, headers=root_headers)
    limited = await create_key(
        client,
        root_headers,
        other.json()["id"],
        rate_limit={"limit": 100, "period_seconds": 60},
    )
    r = await client.get(f"/v1/sessions/{session['id']}", headers=bearer(limited["key"]))
    assert (r.status_code, r.json()["code"]) == (404, "not_found")
    assert r.headers["ratelimit-limit"] == "100"
    _edge_headers_present(r)


async def test_a_root_key_cannot_read_a_session_on_the_hot_route(client, root_headers, project_id):
    _, session = await _session(client, root_headers, project_id)
    r = await client.get(f"/v1/sessions/{session['id']}", headers=root_headers)
    assert r.status_code in (401, 403, 404)
    assert r.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "path",
    [
        "/v1/sessions/a%2Fb",  # decodes to two segments: not the hot route's shape
        "/v1/sessions/",
        "/v1/sessions/x/y",
    ],
)
async def test_paths_that_are_not_one_segment_are_not_hot(client, root_headers, project_id, path):
    key, _ = await _session(client, root_headers, project_id)
    r = await client.get(path, headers=bearer(key["key"]))
    assert r.status_code in (307, 404, 405)  # the app's answer (307: Starlette's slash)
    _edge_headers_present(r)


async def test_head_of_a_session_goes_to_the_app_and_is_checked(client, root_headers, project_id):
    key, session = await _session(client, root_headers, project_id)
    assert (await client.head(f"/v1/sessions/{session['id']}")).status_code == 401
    head = await client.head(f"/v1/sessions/{session['id']}", headers=bearer(key["key"]))
    assert head.status_code == 200
    assert head.content == b""


async def test_healthz_is_hot_and_carries_the_edge_headers(client):
    r = await client.get("/healthz")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})
    _edge_headers_present(r)
    head = await client.head("/healthz")  # load balancers probe with HEAD too
    assert (head.status_code, head.content) == (200, b"")


@pytest.mark.parametrize(
    ("request_kwargs", "status", "code"),
    [
        ({"url": "/v1/keys/%00"}, 400, "nul_in_request"),
        ({"url": "/healthz", "headers": {"x-big": "a" * 20_000}}, 431, "headers_too_large"),
        (
            {"url": "/v1/sessions", "method": "POST", "content": b"{" * 2_000_000},
            413,
            "payload_too_large",
        ),
        (
            {
                "url": "/v1/sessions",
                "method": "POST",
                "content": b'{"delivery_mode": "poll", "delivery_mode": "webhook"}',
                "headers": {"content-type": "application/json"},
            },
            422,
            "validation_failed",
        ),
    ],
)
async def test_refusals_at_the_edge_carry_its_headers(
    client, request_kwargs: dict[str, Any], status: int, code: str
):
    kwargs = {"method": "GET", **request_kwargs}
    r = await client.request(**kwargs)
    assert (r.status_code, r.json()["code"]) == (status, code)
    _edge_headers_present(r)


async def test_a_route_that_sets_its_own_caching_and_hsts_keeps_them():
    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = [
            (b"Cache-Control", b"public, max-age=60"),
            (b"Strict-Transport-Security", b"max-age=1; preload"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    transport = httpx.ASGITransport(app=Edge(app))
    async with httpx.AsyncClient(transport=transport, base_url="https://t") as c:
        r = await c.get("/")
    assert r.headers.get_list("cache-control") == ["public, max-age=60"]
    assert r.headers.get_list("strict-transport-security") == ["max-age=1; preload"]


async def test_a_response_carries_one_request_id_the_edges():
    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"X-Request-Id", b"the-apps-own")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    transport = httpx.ASGITransport(app=Edge(app))
    async with httpx.AsyncClient(transport=transport, base_url="https://t") as c:
        r = await c.get("/")
    [only] = r.headers.get_list("x-request-id")
    assert REQUEST_ID.match(only)


async def test_plain_http_responses_never_carry_hsts():
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    transport = httpx.ASGITransport(app=Edge(app, default_no_store=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        r = await c.get("/")
    assert "strict-transport-security" not in r.headers  # RFC 6797 §7.2
    assert "cache-control" not in r.headers  # the gateway's upstream decides
    assert REQUEST_ID.match(r.headers["x-request-id"])


async def test_a_hot_handler_that_fails_answers_500_without_saying_why():
    async def broken(scope: Any, send: Any, param: str) -> None:
        raise RuntimeError(f"secret detail {param}")

    async def missing(scope: Any, send: Any, param: str) -> None:
        raise NotFound()

    async def never(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the app must not be reached")

    edge = Edge(
        never,
        limits=_limits(),
        hot=(HotRoute("/broken/", broken), HotRoute("/missing", missing, exact=True)),
    )
    transport = httpx.ASGITransport(app=edge)
    async with httpx.AsyncClient(transport=transport, base_url="https://t") as c:
        r = await c.get("/broken/s3cr3t")
        gone = await c.get("/missing")
    assert (r.status_code, r.json()["code"]) == (500, "internal_error")
    assert "s3cr3t" not in r.text
    assert "secret detail" not in r.text
    assert (gone.status_code, gone.json()["code"]) == (404, "not_found")
    _edge_headers_present(r)


def _limits():
    from keyguard.api.limits import Limits

    return Limits(max_body_bytes=1024)
