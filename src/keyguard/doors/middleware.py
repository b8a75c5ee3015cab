"""Door 1: plain ASGI middleware for Python apps (Starlette, FastAPI, anything ASGI).

Example::

    app = KeyguardMiddleware(
        app,
        engine=runtime.engine,
        header_prefix=runtime.settings.header_prefix,
        trusted_proxies=runtime.trusted_proxies,
        client_cert_header=runtime.client_cert_header,
        exclude_paths={"/health"},
    )

The authenticated caller lands in ``scope["state"]["keyguard"]`` (``request.state.keyguard``).
Refusals are answered here as problem+json, so the app never sees them. Every response
to a rate-limited key carries ``RateLimit-Limit`` / ``-Remaining`` / ``-Reset``.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from keyguard.doors.asgi import BufferedBody, with_headers
from keyguard.doors.authenticate import authenticate_scope
from keyguard.engine.ipallow import TrustedProxies
from keyguard.engine.verifier import PolicyEngine
from keyguard.errors import KeyguardError
from keyguard.wire import send_problem


class KeyguardMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        engine: PolicyEngine,
        header_prefix: str = "Keyguard",
        trusted_proxies: TrustedProxies | Iterable[str] = (),
        client_cert_header: str | None = None,
        required_scopes: Iterable[str] = (),
        exclude_paths: Iterable[str] = (),
        max_signed_body_bytes: int = 1_048_576,
    ) -> None:
        self.app = app
        self.engine = engine
        self.header_prefix = header_prefix
        self.trusted_proxies = (
            trusted_proxies
            if isinstance(trusted_proxies, TrustedProxies)
            else TrustedProxies(trusted_proxies)
        )
        # KEYGUARD_CLIENT_CERT_HEADER: the one header trusted proxies put certificates in.
        self.client_cert_header = client_cert_header
        self.required_scopes = tuple(required_scopes)
        self.exclude_paths = frozenset(exclude_paths)
        self.max_body = max_signed_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exclude_paths:
            await self.app(scope, receive, send)
            return
        body = BufferedBody(receive, self.max_body)
        try:
            principal = await authenticate_scope(
                self.engine,
                scope,
                body.read,
                header_prefix=self.header_prefix,
                trusted_proxies=self.trusted_proxies,
                client_cert_header=self.client_cert_header,
                required_scopes=self.required_scopes,
                door="middleware",
            )
        except KeyguardError as error:
            await send_problem(send, error)
            return
        scope.setdefault("state", {})["keyguard"] = principal
        if principal.ratelimit is not None:
            send = with_headers(send, principal.ratelimit.header_items())
        await self.app(scope, body.receive if body.read_any else receive, send)


__all__ = ["KeyguardMiddleware"]
