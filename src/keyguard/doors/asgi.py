"""ASGI plumbing shared by the middleware and the gateway: problems, headers, bodies."""

from __future__ import annotations

from typing import Any

from starlette.types import Message, Receive, Send

from keyguard.errors import PayloadTooLarge
from keyguard.wire import send_problem

__all__ = ["BufferedBody", "send_problem", "with_headers"]


def with_headers(send: Send, extra: tuple[tuple[bytes, bytes], ...]) -> Send:
    """``send`` that appends ``extra`` to the response start (e.g. ``RateLimit-*``)."""

    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers: list[Any] = list(message.get("headers", ()))
            headers.extend(extra)
            message = {**message, "headers": headers}
        await send(message)

    return send_with_headers


class BufferedBody:
    """Reads the request body when a check needs it, and replays it to the app after.

    ``await body.read()`` collects the body (``PayloadTooLarge`` beyond ``limit``);
    ``body.receive`` then hands the app the same messages, followed by the live ones.
    """

    __slots__ = ("_buffered", "_limit", "_receive", "data", "read_any")

    def __init__(self, receive: Receive, limit: int) -> None:
        self._receive = receive
        self._limit = limit
        self._buffered: list[Message] = []
        self.read_any = False
        self.data = b""  # the whole body, once read

    async def read(self) -> bytes:
        self.read_any = True
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self._receive()
            self._buffered.append(message)
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._limit:
                raise PayloadTooLarge()
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        self.data = b"".join(chunks)
        return self.data

    async def receive(self) -> Message:
        if self._buffered:
            return self._buffered.pop(0)
        return await self._receive()
