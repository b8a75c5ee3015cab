"""The access log: one line per request, batched, never a query string, never a forged line."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import httpx
import pytest

from keyguard.server.access_log import AccessLog, printable_path
from keyguard.server.edge import Edge


async def ok(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def _get(edge: Edge, *paths: str) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=edge, client=("198.51.100.9", 4242))
    async with httpx.AsyncClient(transport=transport, base_url="https://t") as c:
        return [await c.get(p) for p in paths]


async def test_each_request_is_one_json_line_with_the_responses_request_id():
    out = io.StringIO()
    log = AccessLog(out, "json")
    (r,) = await _get(Edge(ok, access_log=log), "/v1/sessions/sess_1")
    assert out.getvalue() == ""  # written in batches, off the request path
    log.flush()
    (line,) = out.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["request_id"] == r.headers["x-request-id"]
    assert entry | {"time": "", "duration_ms": 0, "request_id": ""} == {
        "time": "",
        "level": "info",
        "logger": "keyguard.access",
        "message": "GET /v1/sessions/sess_1 204",
        "request_id": "",
        "client": "198.51.100.9:4242",
        "method": "GET",
        "path": "/v1/sessions/sess_1",
        "http_version": "1.1",
        "status": 204,
        "duration_ms": 0,
    }


async def test_the_batch_is_written_by_the_loop_without_anyone_asking():
    out = io.StringIO()
    log = AccessLog(out, "text", flush_seconds=0.01)
    await _get(Edge(ok, access_log=log), "/a", "/b")
    await asyncio.sleep(0.05)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert '"GET /a HTTP/1.1" 204' in lines[0]
    assert '"GET /b HTTP/1.1" 204' in lines[1]


async def test_signed_link_query_never_reaches_the_access_log():
    out = io.StringIO()
    log = AccessLog(out, "text")
    await _get(Edge(ok, access_log=log), "/v1/photos/pho_1/download?expires=1&signature=abcdef0123")
    log.flush()
    assert "abcdef0123" not in out.getvalue()
    assert "expires" not in out.getvalue()
    assert '"GET /v1/photos/pho_1/download HTTP/1.1" 204' in out.getvalue()


async def test_a_path_cannot_write_a_line_of_its_own():
    # httptools refuses raw control characters; what reaches an app in raw_path is
    # escaped anyway, so no request can forge an entry.
    out = io.StringIO()
    log = AccessLog(out, "text")
    forged = (
        b'/x\n2026-12-05T00:00:00.000Z INFO keyguard.access: 10.0.0.1:1 "GET /admin HTTP/1.1" 200'
    )
    scope = {
        "type": "http",
        "method": "GET",
        "path": forged.decode(),
        "raw_path": forged,
        "query_string": b"",
        "headers": [],
        "client": ("198.51.100.9", 1),
        "scheme": "https",
        "http_version": "1.1",
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        pass

    await Edge(ok, access_log=log)(scope, receive, send)
    log.flush()
    assert len(out.getvalue().splitlines()) == 1
    assert "\\n2026" in out.getvalue()


async def test_a_request_that_fails_in_the_app_is_logged_as_500():
    async def broken(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    out = io.StringIO()
    log = AccessLog(out, "json")
    edge = Edge(broken, access_log=log)
    transport = httpx.ASGITransport(app=edge, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="https://t") as c:
        await c.get("/x")
    log.flush()
    assert json.loads(out.getvalue())["status"] == 500


async def test_a_broken_log_stream_does_not_fail_requests():
    out = io.StringIO()
    log = AccessLog(out, "text")
    out.close()
    (r,) = await _get(Edge(ok, access_log=log), "/a")
    log.flush()
    assert r.status_code == 204


async def test_a_big_batch_is_written_in_whole_lines_of_at_most_a_pipe_buffer():
    writes: list[str] = []

    class Recording(io.StringIO):
        def write(self, text: str) -> int:
            writes.append(text)
            return len(text)

    log = AccessLog(Recording(), "json")
    await _get(Edge(ok, access_log=log), *[f"/v1/sessions/sess_{i}" for i in range(100)])
    log.flush()
    assert len(writes) > 1
    assert all(len(w.encode()) <= 4096 and w.endswith("\n") for w in writes)
    assert sum(w.count("\n") for w in writes) == 100


@pytest.mark.parametrize(
    "path",
    [b"/invitations/uqdgJj_secret", b"/signup/tok_abc", b"/account/email/confirm/abc.def"],
)
def test_the_token_of_a_one_time_link_never_reaches_the_log(path: bytes) -> None:
    logged = printable_path(path)
    assert logged.endswith("/[token]")
    assert path.rsplit(b"/", 1)[1].decode() not in logged
