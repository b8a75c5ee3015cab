"""Refuse oversized requests before anything parses them (plain ASGI, cheap)."""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keyguard.errors import HeadersTooLarge, KeyguardError, NulInRequest, PayloadTooLarge
from keyguard.wire import send_problem


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
        # No identifier, cursor or name of ours holds a NUL, and PostgreSQL refuses one in
        # text ("invalid byte sequence"): a 500 from deep inside a query, found by the
        # review's probe (GET /v1/keys/%00). Refused here, once, for every route.
        query = scope.get("query_string", b"")
        if "\x00" in scope["path"] or b"%00" in query or b"\x00" in query:
            await refuse(send, NulInRequest())
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
            await refuse(send, HeadersTooLarge())
            return
        large = self.large_body is not None and self.large_body(scope["method"], scope["path"])
        limit = self.max_large if large else self.max_body
        if declared is not None and declared > limit:
            await refuse(send, PayloadTooLarge())
            return
        received = 0
        started = too_large = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if too_large:
                # The app caught our refusal (FastAPI turns any error while reading a
                # body into 400/422): answer 413 ourselves, instead of what it says.
                if not started:
                    started = True
                    await refuse(send, PayloadTooLarge())
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        async def counting_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    too_large = True
                    raise PayloadTooLarge()
            return message

        try:
            await self.app(scope, counting_receive, guarded_send)
        except PayloadTooLarge as error:
            if not started:
                await refuse(send, error)


async def refuse(send: Send, error: KeyguardError, *, close: bool = True) -> None:
    """Answer ``error`` as problem+json from plain ASGI. ``close``: the body may not have
    been read, so the connection cannot be reused."""
    await send_problem(send, error, extra=((b"connection", b"close"),) if close else ())
