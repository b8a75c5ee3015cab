"""Keeping clients on HTTPS: the redirect-only plain-HTTP listener.

(HSTS on every HTTPS response is the edge's job: :mod:`keyguard.server.edge`.)
:class:`HttpsRedirectApp` is the whole app of the optional plain-HTTP listener: it never
serves API data, so a key sent over cleartext by mistake reaches no handler -- GET/HEAD
get a 308 to the HTTPS URL, everything else a 403 ``https_required`` problem (a
redirected POST would resend the credentials and body the client just leaked).
"""

from __future__ import annotations

import re

from starlette.types import Receive, Scope, Send

from keyguard.errors import HttpsRequired
from keyguard.wire import CREDENTIAL_HEADERS, send_problem

__all__ = ["HttpsRedirectApp"]

_REDIRECT_BODY = b"Redirecting to HTTPS\n"


# A Host header we are willing to echo into a Location: a DNS name or IPv4 (optional port),
# or a bracketed IPv6 literal (optional port). Anything else falls back to the configured host.
_HOST_RE = re.compile(
    r"^(?:(?P<name>[A-Za-z0-9.-]{1,253})|(?P<v6>\[[0-9A-Fa-f:.]+\]))(?::\d{1,5})?$"
)


_CREDENTIAL_HEADERS = frozenset(name.encode() for name in CREDENTIAL_HEADERS)


def _carries_credentials(scope: Scope) -> bool:
    return any(name in _CREDENTIAL_HEADERS for name, _ in scope["headers"])


class HttpsRedirectApp:
    """The plain-HTTP listener's only app: 308 to HTTPS for GET/HEAD without credentials,
    403 ``https_required`` otherwise.

    ``host`` is used when the request has no usable ``Host`` header; ``https_port`` is the
    port the HTTPS listener actually bound.
    """

    def __init__(self, *, https_port: int, host: str = "localhost") -> None:
        self.https_port = https_port
        self.fallback_host = _url_host(host)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return  # nothing to start; the HTTPS app owns the lifespan
        if scope["type"] != "http":
            # WebSocket over cleartext: refuse the handshake.
            await send({"type": "websocket.close", "code": 1008})
            return
        # A request that already carries credentials is refused, not redirected: a client
        # following the redirect would never learn that its key travelled in cleartext.
        if scope["method"] in ("GET", "HEAD") and not _carries_credentials(scope):
            await self._redirect(scope, send)
        else:
            await self._forbidden(scope, send)

    async def _redirect(self, scope: Scope, send: Send) -> None:
        location = f"https://{self._host(scope)}{self._port_suffix()}{_path_and_query(scope)}"
        body = b"" if scope["method"] == "HEAD" else _REDIRECT_BODY
        await send(
            {
                "type": "http.response.start",
                "status": 308,
                "headers": [
                    (b"location", location.encode("latin-1")),
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(_REDIRECT_BODY)).encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _forbidden(self, scope: Scope, send: Send) -> None:
        await send_problem(send, HttpsRequired(), extra=((b"cache-control", b"no-store"),))

    def _host(self, scope: Scope) -> str:
        for name, value in scope["headers"]:
            if name == b"host":
                match = _HOST_RE.match(value.decode("latin-1"))
                if match:
                    return match["name"] or match["v6"]
                break
        return self.fallback_host

    def _port_suffix(self) -> str:
        return "" if self.https_port == 443 else f":{self.https_port}"


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 - a wildcard bind names no host to send clients to
        return "localhost"
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _path_and_query(scope: Scope) -> str:
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if raw else scope["path"]
    if not path.startswith("/"):
        # An absolute-form or odd target must not become part of the authority.
        path = "/"
    query = scope.get("query_string", b"")
    return f"{path}?{query.decode('latin-1')}" if query else path
