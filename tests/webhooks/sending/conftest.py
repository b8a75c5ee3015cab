"""A tiny real HTTP/1.1 receiver on loopback, so the sender is tested over real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    local_address: str
    names: list[str]  # every header name as sent, in order (a doubled one shows twice)


@dataclass
class Receiver:
    host: str
    port: int
    requests: list[Seen] = field(default_factory=list)
    sni: list[str | None] = field(default_factory=list)

    def url(self, path: str, *, scheme: str = "http", host: str | None = None) -> str:
        return f"{scheme}://{host or self.host}:{self.port}{path}"


def _response(status: int, body: bytes = b"", extra: str = "", length: int | None = None) -> bytes:
    head = (
        f"HTTP/1.1 {status} X\r\nContent-Length: {len(body) if length is None else length}\r\n"
        f"Connection: close\r\n{extra}\r\n"
    )
    return head.encode() + body


async def _route(path: str, writer: asyncio.StreamWriter) -> None:
    if path == "/ok":
        writer.write(_response(200, b"thanks"))
    elif path == "/fail":
        writer.write(_response(500, b"boom"))
    elif path == "/gone":
        writer.write(_response(410))
    elif path == "/busy":
        writer.write(_response(429, extra="Retry-After: 120\r\n"))
    elif path == "/redirect":
        writer.write(_response(302, b"moved", extra="Location: http://10.0.0.1/steal\r\n"))
    elif path == "/slow":
        await asyncio.sleep(5)
        writer.write(_response(200))
    elif path == "/big":
        writer.write(_response(200, b"A" * 1_000_000))
    elif path == "/drip":
        # Announces 10 MB, sends 8 KiB, then stalls: only a reader that stops at its
        # limit returns before the attempt times out.
        writer.write(_response(200, b"B" * 8192, length=10_000_000))
        await writer.drain()
        await asyncio.sleep(30)
    else:
        writer.write(_response(404))
    await writer.drain()


def _handler(receiver: Receiver) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], object]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {}
            names = []
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                    names.append(name.strip().lower())
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            local = writer.get_extra_info("sockname")[0]
            receiver.requests.append(Seen(method, path, headers, body, local, names))
            await _route(path, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()

    return handle


class ReceiverFactory:
    def __init__(self) -> None:
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(
        self, host: str = "127.0.0.1", port: int = 0, ssl_context: ssl.SSLContext | None = None
    ) -> Receiver:
        receiver = Receiver(host, port)
        handle = _handler(receiver)

        async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._tasks.add(task)
            try:
                await handle(reader, writer)
            finally:
                self._tasks.discard(task)

        if ssl_context is not None:
            ssl_context.sni_callback = lambda sock, name, ctx: receiver.sni.append(name)
        server = await asyncio.start_server(tracked, host, port, ssl=ssl_context)
        receiver.port = server.sockets[0].getsockname()[1]
        self._servers.append(server)
        return receiver

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for server in self._servers:
            server.close()
            await server.wait_closed()


@pytest.fixture
async def receivers() -> AsyncIterator[ReceiverFactory]:
    factory = ReceiverFactory()
    yield factory
    await factory.close()


@pytest.fixture
async def receiver(receivers: ReceiverFactory) -> Receiver:
    return await receivers.start()
