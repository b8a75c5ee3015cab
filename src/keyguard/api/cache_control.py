"""API responses are private: ``Cache-Control: no-store`` unless a route says otherwise.

Keys, secrets and signed download links travel in response bodies; no browser, proxy or
client-side HTTP cache should keep a copy (OWASP API security: sensitive responses).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_NO_STORE = (b"cache-control", b"no-store")


class DefaultNoStore:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_default(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", [])
                if not any(name.lower() == b"cache-control" for name, _ in headers):
                    message["headers"] = [*headers, _NO_STORE]
            await send(message)

        await self.app(scope, receive, send_with_default)
