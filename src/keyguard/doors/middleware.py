"""Door 1: plain ASGI middleware for Python apps (Starlette, FastAPI, anything ASGI).

Example::

    app = KeyguardMiddleware(app, engine=runtime.engine, exclude_paths={"/health"})

The authenticated caller lands in ``scope["state"]["keyguard"]`` (``request.state.keyguard``).
Refusals are answered here as problem+json, so the app never sees them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keyguard.doors.authenticate import authenticate_scope
from keyguard.engine.verifier import PolicyEngine
from keyguard.errors import AuthenticationError, KeyguardError, PayloadTooLarge


class KeyguardMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        engine: PolicyEngine,
        header_prefix: str = "Keyguard",
        required_scopes: Iterable[str] = (),
        exclude_paths: Iterable[str] = (),
        max_signed_body_bytes: int = 1_048_576,
    ) -> None:
        self.app = app
        self.engine = engine
        self.header_prefix = header_prefix
        self.required_scopes = tuple(required_scopes)
        self.exclude_paths = frozenset(exclude_paths)
        self.max_body = max_signed_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exclude_paths:
            await self.app(scope, receive, send)
            return
        buffered: list[Message] = []

        async def read_body() -> bytes:
            chunks, size = [], 0
            while True:
                message = await receive()
                buffered.append(message)
                if message["type"] != "http.request":
                    break
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_body:
                    raise PayloadTooLarge()
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
            return b"".join(chunks)

        try:
            principal = await authenticate_scope(
                self.engine,
                scope,
                read_body,
                header_prefix=self.header_prefix,
                required_scopes=self.required_scopes,
            )
        except KeyguardError as error:
            await _send_problem(send, error)
            return
        scope.setdefault("state", {})["keyguard"] = principal

        async def replay() -> Message:
            return buffered.pop(0) if buffered else await receive()

        await self.app(scope, replay if buffered else receive, send)


async def _send_problem(send: Send, error: KeyguardError) -> None:
    body = json.dumps(error.to_problem()).encode()
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
    ]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    if isinstance(error, AuthenticationError):
        headers.append((b"www-authenticate", b'Bearer realm="keyguard"'))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


__all__ = ["KeyguardMiddleware"]
