"""Usage is exact: every check of a known key through every door is counted once, by
answer, in minute, hour and day buckets, across concurrent requests, instances and
restarts; nothing is written on the request path."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from helpers import POLL_SESSION, bearer, create_key
from keyguard.app import create_asgi
from keyguard.gateway import Gateway
from keyguard.runtime import Runtime
from keyguard.usage.models import UsageBucket

PREFIX = "APTR"  # the conftest settings' header prefix


async def usage_of(client, headers, key_id: str, **query: str) -> dict[str, Any]:
    reply = await client.get(f"/v1/keys/{key_id}/usage", params=query, headers=headers)
    assert reply.status_code == 200, reply.text
    return reply.json()


async def bucket_rows(runtime: Runtime) -> int:
    async with runtime.sessions() as db:
        return (await db.execute(select(func.count()).select_from(UsageBucket))).scalar_one()


@pytest.fixture
async def upstream() -> AsyncIterator[str]:
    """A plain HTTP server on loopback answering 200 to anything (behind the gateway)."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.readuntil(b"\r\n\r\n"):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await answer(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    server.close()


@pytest.fixture
async def gateway(runtime: Runtime, upstream: str) -> AsyncIterator[httpx.AsyncClient]:
    proxy = Gateway(engine=runtime.engine, upstream=upstream, header_prefix=PREFIX)

    async def over_https(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await proxy(
            {**scope, "scheme": "https"} if scope["type"] == "http" else scope, receive, send
        )

    transport = httpx.ASGITransport(app=over_https, client=("203.0.113.9", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="https://gateway") as client:
        yield client
    await proxy._client.aclose()


async def test_every_door_counts_every_request_exactly_once(
    client, root_headers, project_id, runtime, gateway
):
    key = await create_key(client, root_headers, project_id)
    rows_before = await bucket_rows(runtime)
    # The middleware door (a protected route), the verify API and the gateway, at once.
    through_middleware = [
        client.post("/v1/sessions", json=POLL_SESSION, headers=bearer(key["key"]))
        for _ in range(40)
    ]
    through_verify = [
        client.post(
            "/v1/keys/verify",
            json={"headers": {"Authorization": f"Bearer {key['key']}"}},
            headers=root_headers,
        )
        for _ in range(25)
    ]
    through_gateway = [gateway.get("/anything", headers=bearer(key["key"])) for _ in range(15)]
    replies = await asyncio.gather(*through_middleware, *through_verify, *through_gateway)
    assert [r.status_code for r in replies].count(200) + [r.status_code for r in replies].count(
        201
    ) == 80
    assert all(r.json()["valid"] for r in replies[40:65])
    assert await bucket_rows(runtime) == rows_before  # nothing written on the request path

    assert await runtime.usage.flush() >= 80
    usage = await usage_of(client, root_headers, key["id"], granularity="minute")
    assert usage["totals"] == {"requests": 80, "succeeded": 80, "refused": 0, "by_code": {}}
    assert usage["last_ip"] == "203.0.113.7" or usage["last_ip"] == "203.0.113.9"
    assert usage["last_used_at"] is not None
    for granularity in ("hour", "day"):
        coarse = await usage_of(client, root_headers, key["id"], granularity=granularity)
        assert coarse["totals"]["requests"] == 80


async def test_refusals_are_counted_by_their_code(client, root_headers, project_id, runtime):
    key = await create_key(client, root_headers, project_id, ip_allowlist=["10.0.0.0/8"])
    for _ in range(5):
        refused = await client.post("/v1/sessions", json=POLL_SESSION, headers=bearer(key["key"]))
        assert refused.status_code == 403
    await runtime.usage.flush()
    usage = await usage_of(client, root_headers, key["id"])
    assert usage["totals"] == {
        "requests": 5,
        "succeeded": 0,
        "refused": 5,
        "by_code": {"ip_not_allowed": 5},
    }


async def test_junk_presented_as_a_key_counts_against_nothing(
    client, root_headers, project_id, runtime
):
    key = await create_key(client, root_headers, project_id)
    wrong_secret = key["key"][:-4] + ("AAAA" if not key["key"].endswith("AAAA") else "BBBB")
    for presented in (wrong_secret, "aptr_live_unknownid_" + "x" * 40):
        r = await client.post("/v1/sessions", json=POLL_SESSION, headers=bearer(presented))
        assert r.status_code == 401
    await runtime.usage.flush()
    assert (await usage_of(client, root_headers, key["id"]))["totals"]["requests"] == 0


async def test_the_series_has_one_point_per_bucket(
    client, root_headers, project_id, runtime, clock
):
    key = await create_key(client, root_headers, project_id)
    clock.t = clock.t - clock.t % 3600 + 10  # a little after an hour begins
    for minute in range(3):
        for _ in range(minute + 1):
            await client.post("/v1/sessions", json=POLL_SESSION, headers=bearer(key["key"]))
        clock.advance(60)
    await runtime.usage.flush()
    usage = await usage_of(client, root_headers, key["id"], granularity="minute")
    assert len(usage["series"]) == 60  # an hour of minutes, empty ones included
    counted = [p["requests"] for p in usage["series"] if p["requests"]]
    assert counted == [1, 2, 3]


@pytest.mark.parametrize(
    "query",
    [
        {"granularity": "week"},
        {"from": "2030-01-02T00:00:00Z", "to": "2030-01-01T00:00:00Z"},
        {"from": "2030-01-01T00:00:00Z", "to": "2030-03-01T00:00:00Z", "granularity": "minute"},
        {"from": "not a date"},
    ],
)
async def test_a_bad_window_is_a_clear_422(client, root_headers, project_id, query):
    key = await create_key(client, root_headers, project_id)
    reply = await client.get(f"/v1/keys/{key['id']}/usage", params=query, headers=root_headers)
    assert reply.status_code == 422
    assert reply.headers["content-type"] == "application/problem+json"


async def test_unknown_keys_and_projects_are_404(client, root_headers):
    assert (await client.get("/v1/keys/key_nope/usage", headers=root_headers)).status_code == 404
    missing = await client.get("/v1/projects/proj_nope/usage", headers=root_headers)
    assert missing.status_code == 404


async def test_a_project_shows_its_totals_and_busiest_keys(
    client, root_headers, project_id, runtime
):
    busy = await create_key(client, root_headers, project_id, name="busy")
    quiet = await create_key(client, root_headers, project_id, name="quiet")
    for key, n in ((busy, 7), (quiet, 2)):
        for _ in range(n):
            await client.post("/v1/sessions", json=POLL_SESSION, headers=bearer(key["key"]))
    await runtime.usage.flush()
    reply = await client.get(f"/v1/projects/{project_id}/usage", headers=root_headers)
    assert reply.status_code == 200
    usage = reply.json()
    assert usage["totals"]["requests"] == 9
    assert usage["busiest_keys"] == [
        {"key_id": busy["id"], "requests": 7},
        {"key_id": quiet["id"], "requests": 2},
    ]


async def test_counts_survive_a_restart_and_add_up_across_instances(
    settings, clock, client, root_headers, project_id, runtime
):
    key = await create_key(client, root_headers, project_id)
    # A second instance on the same database, counting the same key.
    other = await Runtime.start(settings, clock=clock)
    try:
        transport = httpx.ASGITransport(app=create_asgi(other), client=("198.51.100.1", 1))
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c2:
            await asyncio.gather(
                *(
                    c2.post("/v1/sessions", json=POLL_SESSION, headers=bearer(key["key"]))
                    for _ in range(30)
                ),
                *(
                    client.post("/v1/sessions", json=POLL_SESSION, headers=bearer(key["key"]))
                    for _ in range(20)
                ),
            )
    finally:
        await other.close()  # a clean stop flushes what it counted
    await runtime.usage.flush()
    after_restart = await Runtime.start(settings, clock=clock)
    try:
        transport = httpx.ASGITransport(app=create_asgi(after_restart), client=("198.51.100.2", 1))
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c3:
            usage = await usage_of(c3, root_headers, key["id"])
    finally:
        await after_restart.close()
    assert usage["totals"]["requests"] == 50


async def test_busiest_keys_are_exact_across_whole_days_and_edge_hours(
    client, root_headers, project_id, runtime, clock
):
    day = 86400
    midnight = clock.t - clock.t % day + 10 * day
    keys = [await create_key(client, root_headers, project_id, name=n) for n in "abc"]
    for key, offset, n in ((keys[0], 10 * 3600, 5), (keys[1], day + 23 * 3600, 3),
                           (keys[2], 2 * day + 3600, 4)):  # fmt: skip
        clock.t = midnight + offset
        for _ in range(n):
            await client.post("/v1/sessions", json=POLL_SESSION, headers=bearer(key["key"]))
    await runtime.usage.flush()

    async def busiest(start: float, end: float) -> list[tuple[str, int]]:
        params = {
            "from": datetime.fromtimestamp(start, UTC).isoformat(),
            "to": datetime.fromtimestamp(end, UTC).isoformat(),
        }
        reply = await client.get(
            f"/v1/projects/{project_id}/usage", params=params, headers=root_headers
        )
        assert reply.status_code == 200, reply.text
        names = {k["id"]: k["name"] for k in keys}
        return [
            (names.get(b["key_id"], "root"), b["requests"]) for b in reply.json()["busiest_keys"]
        ]

    clock.t = midnight + 3 * day
    assert await busiest(midnight + 9 * 3600, midnight + 2 * day + 2 * 3600 - 1) == [
        ("a", 5),
        ("c", 4),
        ("b", 3),
    ]
    assert await busiest(midnight + 11 * 3600, midnight + 2 * day) == [("b", 3)]


async def test_window_bounds_are_utc_whole_buckets_and_never_a_500(
    client, root_headers, project_id, runtime, clock
):
    key = await create_key(client, root_headers, project_id)
    clock.t = 1_900_000_800.0 + 30  # 30 s into a minute (and into an hour: 08:00:30 UTC)
    await client.post("/v1/sessions", json=POLL_SESSION, headers=bearer(key["key"]))
    await runtime.usage.flush()
    at = datetime.fromtimestamp(1_900_000_800, UTC)
    naive = at.replace(tzinfo=None).isoformat()  # no zone: read as UTC, not server time
    usage = await usage_of(client, root_headers, key["id"], to=naive, granularity="hour")
    assert usage["totals"]["requests"] == 1  # the bucket holding `to` is included
    assert usage["end"].startswith(
        datetime.fromtimestamp(1_900_000_800 + 3600, UTC).isoformat()[:19]
    )
    for granularity in ("day", "hour"):  # rounding up past year 9999: a 422, not a 500
        params = {"to": "9999-12-31T23:59:59Z", "granularity": granularity}
        reply = await client.get(f"/v1/keys/{key['id']}/usage", params=params, headers=root_headers)
        assert reply.status_code == 422, reply.text
