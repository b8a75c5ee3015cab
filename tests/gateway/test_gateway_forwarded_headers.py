"""The upstream receives exactly the client's end-to-end headers; responses carry one Date."""

from __future__ import annotations

import gzip
import json
from typing import Any

UPSTREAM_DATE = b"Mon, 01 Jan 2001 00:00:00 GMT"  # what the upstream sends (conftest)

ADDED_BY_GATEWAY = {
    b"host",
    b"x-forwarded-for",
    b"x-forwarded-proto",
    b"x-forwarded-host",
    b"x-aptr-key-id",
    b"x-aptr-project-id",
    b"x-aptr-scopes",
    b"x-request-id",
}


async def test_no_client_library_defaults_are_added(wire: Any) -> None:
    reply = await wire.send(b"/echo", (b"X-Custom", b"kept"))
    assert reply.status == 200, reply.body
    seen = wire.seen[-1]
    names = {name.lower() for name, _ in seen.headers}
    assert names - ADDED_BY_GATEWAY == {b"x-custom", b"accept-encoding"}
    assert seen.values(b"user-agent") == []
    assert seen.values(b"accept") == []
    assert seen.values(b"x-custom") == [b"kept"]


async def test_a_client_that_sent_no_accept_encoding_gets_no_content_coding(wire: Any) -> None:
    reply = await wire.send(b"/echo")
    assert wire.seen[-1].values(b"accept-encoding") == [b"identity"]
    assert reply.values(b"content-encoding") == []
    assert json.loads(reply.body)["request_line"] == "GET /api/echo HTTP/1.1"


async def test_the_clients_own_headers_pass_as_sent(wire: Any) -> None:
    reply = await wire.send(
        b"/echo",
        (b"Accept-Encoding", b"gzip"),
        (b"Accept", b"application/json"),
        (b"User-Agent", b"client/1.0"),
    )
    seen = wire.seen[-1]
    assert seen.values(b"accept-encoding") == [b"gzip"]
    assert seen.values(b"accept") == [b"application/json"]
    assert seen.values(b"user-agent") == [b"client/1.0"]
    # Asked for gzip: the coded body passes through untouched.
    assert reply.values(b"content-encoding") == [b"gzip"]
    assert json.loads(gzip.decompress(reply.body))["request_line"].startswith("GET /api/echo")


async def test_responses_carry_exactly_one_date_and_one_server(wire: Any) -> None:
    reply = await wire.send(b"/echo")
    dates = reply.values(b"date")
    assert len(dates) == 1
    assert dates != [UPSTREAM_DATE]  # the gateway's own clock, from the ASGI server
    assert reply.values(b"server") == [b"upstream-echo/1"]


async def test_upstream_cookies_never_reach_another_callers_request(wire: Any) -> None:
    await wire.send(b"/echo")  # the upstream answers with Set-Cookie
    await wire.send(b"/echo")
    assert wire.seen[-1].values(b"cookie") == []


async def test_the_upstream_logs_the_id_our_response_carries(wire: Any) -> None:
    reply = await wire.send(b"/echo", (b"X-Request-Id", b"chosen-by-the-client"))
    [ours] = reply.values(b"x-request-id")  # one, though the upstream sent its own
    assert ours not in (b"chosen-by-the-client", b"the-upstreams-own")
    assert wire.seen[-1].values(b"x-request-id") == [ours]
