"""Refuse oversized requests before anything parses them (plain ASGI, cheap)."""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keyguard.errors import HeadersTooLarge, KeyguardError, PayloadTooLarge


class RequestLimits:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_header_bytes: int = 16_384,
        large_body: Callable[[str, str], bool] | None = None,
        max_large_body_bytes: int = 0,
    ) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.max_headers = max_header_bytes
        # (method, path) -> whether this request may carry the larger body (uploads).
        self.large_body = large_body
        self.max_large = max_large_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        size = 0
        declared: int | None = None
        for name, value in scope["headers"]:
            size += len(name) + len(value)
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = None
        if size > self.max_headers:
            await _refuse(send, HeadersTooLarge())
            return
        large = self.large_body is not None and self.large_body(scope["method"], scope["path"])
        limit = self.max_large if large else self.max_body
        if declared is not None and declared > limit:
            await _refuse(send, PayloadTooLarge())
            return
        received = 0
        started = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLarge()
            return message

        try:
            await self.app(scope, counting_receive, guarded_send)
        except PayloadTooLarge as error:
            if not started:
                await _refuse(send, error)


async def _refuse(send: Send, error: KeyguardError) -> None:
    body = json.dumps(error.to_problem()).encode()
    await send(
        {
            "type": "http.response.start",
            "status": error.status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
