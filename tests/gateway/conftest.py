"""The gateway on real sockets: uvicorn in front, a raw loopback upstream behind.

``wire`` serves a :class:`Gateway` with uvicorn (httptools, as ``keyguard gateway`` does)
in front of an upstream at ``http://127.0.0.1:PORT/api`` that records each request head
byte for byte and answers with it as JSON. Requests are written as raw bytes, so request
targets that HTTP client libraries would normalise (``/../``) reach the gateway as sent.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from keyguard.accounts.service import init_admin
from keyguard.clock import FrozenClock
from keyguard.gateway import Gateway
from keyguard.keys import service as keys
from keyguard.runtime import Runtime
from keyguard.server.edge import Edge
from keyguard.settings import Settings

# Test modules here import the shared `openapi_documents` that sits beside this file.
sys.path.insert(0, str(Path(__file__).parent))

PREFIX = "APTR"
UPSTREAM_DATE = b"Mon, 01 Jan 2001 00:00:00 GMT"


@dataclass
class Seen:
    """One request head as the upstream received it."""

    request_line: bytes
    headers: list[tuple[bytes, bytes]]

    def values(self, name: bytes) -> list[bytes]:
        return [v for n, v in self.headers if n.lower() == name]


@dataclass
class Reply:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def values(self, name: bytes) -> list[bytes]:
        return [v for n, v in self.headers if n.lower() == name]

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Wire:
    gateway_port: int
    key: str
    seen: list[Seen] = field(default_factory=list)

    async def send(self, target: bytes, *headers: tuple[bytes, bytes], auth: bool = True) -> Reply:
        """``GET target`` written raw; ``Host`` and ``Connection: close`` are added."""
        lines = [b"GET " + target + b" HTTP/1.1", b"Host: gw.example"]
        if auth:
            lines.append(b"Authorization: Bearer " + self.key.encode())
        lines += [name + b": " + value for name, value in headers]
        lines.append(b"Connection: close")
        reader, writer = await asyncio.open_connection("127.0.0.1", self.gateway_port)
        try:
            writer.write(b"\r\n".join(lines) + b"\r\n\r\n")
            await writer.drain()
            raw = await asyncio.wait_for(reader.read(), 10)
        finally:
            writer.close()
            await writer.wait_closed()
        return _parse_reply(raw)


def _parse_head(head: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    first, *rest = head.split(b"\r\n")
    headers = []
    for line in rest:
        name, _, value = line.partition(b":")
        headers.append((name, value.strip()))
    return first, headers


def _parse_reply(raw: bytes) -> Reply:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, headers = _parse_head(head)
    if any(n.lower() == b"transfer-encoding" for n, _ in headers):
        decoded = b""
        while True:
            size_line, _, body = body.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                break
            decoded, body = decoded + body[:size], body[size + 2 :]
        body = decoded
    return Reply(int(status_line.split(b" ")[1]), headers, body)


async def _upstream(seen: list[Seen]) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, headers = _parse_head(head[:-4])
            length = next((int(v) for n, v in headers if n.lower() == b"content-length"), 0)
            if length:
                await reader.readexactly(length)
            seen.append(Seen(request_line, headers))
            body = json.dumps(
                {
                    "request_line": request_line.decode("latin-1"),
                    "headers": [[n.decode("latin-1"), v.decode("latin-1")] for n, v in headers],
                }
            ).encode()
            extra = b""
            accepted = b",".join(v for n, v in headers if n.lower() == b"accept-encoding")
            if b"gzip" in accepted:
                body, extra = gzip.compress(body), b"Content-Encoding: gzip\r\n"
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                + b"Date: "
                + UPSTREAM_DATE
                + b"\r\nServer: upstream-echo/1\r\n"
                + b"X-Request-Id: the-upstreams-own\r\n"
                + b"Set-Cookie: upstream_session=first-callers-session; Path=/\r\n"
                + extra
                + b"Content-Length: "
                + str(len(body)).encode()
                + b"\r\n"
                + b"Connection: close\r\n\r\n"
                + body
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def _as_https(app: Any) -> Any:
    """The socket is plain HTTP here; the engine must see the TLS it would see in production."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope = {**scope, "scheme": "https"}
        await app(scope, receive, send)

    return wrapped


@pytest.fixture(scope="module")
async def wire(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Wire]:
    tmp: Path = tmp_path_factory.mktemp("gateway-wire")
    settings = Settings(data_dir=tmp / "data", header_prefix=PREFIX, key_prefix="aptr")
    runtime = await Runtime.start(settings, clock=FrozenClock())
    init = await init_admin(runtime, email="wire@example.com", password="gateway-password-1")
    created = await keys.create_key(
        runtime, init.project.project.id, keys.KeySpec(name="wire"), actor="test"
    )
    seen: list[Seen] = []
    upstream = await _upstream(seen)
    upstream_port = upstream.sockets[0].getsockname()[1]
    gateway = Gateway(
        engine=runtime.engine,
        upstream=f"http://127.0.0.1:{upstream_port}/api",
        header_prefix=PREFIX,
    )
    # As keyguard.server.run configures it: httptools, no Server header, uvicorn's Date.
    config = uvicorn.Config(
        _as_https(Edge(gateway, default_no_store=False)),  # every app is served behind one
        host="127.0.0.1",
        port=0,
        http="httptools",
        lifespan="off",
        proxy_headers=False,
        server_header=False,
        ws="none",
        log_level="warning",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(1000):  # uvicorn has no start-up event to wait on
        if server.started:
            break
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Wire(port, created.issued.key, seen)
    finally:
        server.should_exit = True
        await task
        upstream.close()
        await upstream.wait_closed()
        await gateway._client.aclose()
        await runtime.close()
