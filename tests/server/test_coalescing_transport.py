"""Writes in one loop iteration leave together; closing sends them first; aborting does not."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

from keyguard.server.protocols import CoalescingTransport


class Counted:
    """The real transport, with its ``write`` calls counted."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1
        self.transport.write(data)

    def __getattr__(self, name: str) -> object:
        return getattr(self.transport, name)


async def _serve(on_connect: Callable[[CoalescingTransport], None]) -> tuple[bytes, int]:
    """A real loopback connection; returns what the client read and how many times the
    real transport was written to."""
    counted: list[Counted] = []

    class Server(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            counted.append(Counted(transport))
            real = cast("asyncio.Transport", counted[0])
            on_connect(CoalescingTransport(real, asyncio.get_running_loop()))

    loop = asyncio.get_running_loop()
    server = await loop.create_server(Server, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    chunks: list[bytes] = []
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), 5):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    writer.close()
    server.close()
    await server.wait_closed()
    return b"".join(chunks), counted[0].writes


async def test_writes_of_one_iteration_arrive_in_order_and_together():
    def respond(transport: CoalescingTransport) -> None:
        transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        transport.write(b"ok")
        asyncio.get_running_loop().call_later(0.05, transport.close)

    data, writes = await _serve(respond)
    assert data == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
    assert writes == 1  # one TLS record, one send(), where uvicorn made two


async def test_close_sends_what_is_pending_first():
    def respond(transport: CoalescingTransport) -> None:
        transport.write(b"last words")
        transport.close()  # uvicorn closes right after the final write (Connection: close)

    data, _ = await _serve(respond)
    assert data == b"last words"


async def test_abort_discards_what_is_pending():
    def respond(transport: CoalescingTransport) -> None:
        transport.write(b"never sent")
        transport.abort()

    data, _ = await _serve(respond)
    assert data == b""


async def test_everything_else_is_the_real_transports():
    seen: list[object] = []

    def respond(transport: CoalescingTransport) -> None:
        seen.append(transport.get_extra_info("peername"))
        seen.append(transport.is_closing())
        transport.close()

    await _serve(respond)
    assert seen[0][0] == "127.0.0.1"  # type: ignore[index]
    assert seen[1] is False
