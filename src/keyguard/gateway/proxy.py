"""Door 3: the gateway, a reverse proxy that runs the policy engine before forwarding.

Example (what ``keyguard gateway --upstream http://127.0.0.1:9000`` runs)::

    app = Gateway(engine=runtime.engine, upstream="http://127.0.0.1:9000",
                  header_prefix="Keyguard", trusted_proxies=runtime.trusted_proxies,
                  client_cert_header=runtime.client_cert_header)

An allowed request goes to ``upstream prefix + raw path + raw query``, byte for byte
(a target with ``.``/``..`` segments, raw or percent-encoded, backslashes or ``//`` is
refused first with 400 ``invalid_path``: see :mod:`keyguard.gateway.target`), with its
body streamed, and exactly the client's end-to-end headers (no client-library defaults;
``Accept-Encoding: identity`` when the client sent none), minus hop-by-hop headers (RFC
9110 §7.6.1) and Keyguard's credentials, TOTP and signature headers, with
``X-Forwarded-For`` / ``-Proto`` / ``-Host`` set and the caller's identity added as
``X-{P}-Key-Id``, ``X-{P}-Project-Id`` and ``X-{P}-Scopes`` (space-separated). Copies
of those identity headers sent by the client are always dropped, so the upstream can
trust them. The response streams back as it arrives (without the upstream's ``Date``:
the server adds its own), plus ``RateLimit-*`` for rate-limited keys. An unreachable or
failing upstream is a 502 ``bad_gateway``.

With ``routes`` (``--openapi FILE``: :mod:`keyguard.gateway.openapi`), each request must
be an operation the upstream's document declares (else 404 ``operation_not_declared``)
and meets that operation's requirements (:mod:`keyguard.gateway.security`): an API key,
an access token with scopes, both, or nothing. An access token's caller is told as
``X-{P}-Subject``, ``X-{P}-Client-Id``, ``X-{P}-Project-Id`` and ``X-{P}-Scopes``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpx
from starlette.types import Message, Receive, Scope, Send

from keyguard.doors.asgi import BufferedBody
from keyguard.doors.authenticate import authenticate_scope
from keyguard.doors.scope import facts_from_scope, header_map
from keyguard.engine.ipallow import TrustedProxies
from keyguard.engine.verifier import PolicyEngine
from keyguard.errors import KeyguardError
from keyguard.gateway.errors import BadGateway, OperationNotDeclared
from keyguard.gateway.headers import (
    HOP_BY_HOP,
    IdentityNames,
    canonical_name,
    connection_tokens,
    is_keyguard_authorization,
    own_prefix,
    stripped_request_headers,
)
from keyguard.gateway.routes import RouteTable
from keyguard.gateway.security import Caller, enforce
from keyguard.gateway.target import checked_target
from keyguard.server.logs import REQUEST_ID
from keyguard.wire import send_problem

__all__ = ["Gateway", "upstream_base"]

log = logging.getLogger("keyguard.gateway")

_HOP_BY_HOP = frozenset(name.encode() for name in HOP_BY_HOP)
# The ASGI server adds its own Date to every response; a second one would be ambiguous.
_DROPPED_RESPONSE_HEADERS = _HOP_BY_HOP | {b"date"}
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)


def upstream_base(upstream: str) -> str:
    """``http(s)://host[:port][/prefix]`` without a trailing slash (``ValueError`` if not)."""
    try:
        url = httpx.URL(upstream)
    except httpx.InvalidURL:
        raise ValueError("the upstream is not a valid URL") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError("the upstream must be an http:// or https:// URL")
    if url.query or url.fragment:
        raise ValueError("the upstream URL must not have a query or fragment")
    return str(url.copy_with(path=url.path.rstrip("/") or "/")).rstrip("/")


class Gateway:
    def __init__(
        self,
        *,
        engine: PolicyEngine,
        upstream: str,
        header_prefix: str = "Keyguard",
        trusted_proxies: TrustedProxies | None = None,
        client_cert_header: str | None = None,
        required_scopes: Iterable[str] = (),
        client: httpx.AsyncClient | None = None,
        max_signed_body_bytes: int = 1_048_576,
        on_shutdown: Callable[[], Awaitable[None]] | None = None,
        routes: RouteTable | None = None,
    ) -> None:
        self.engine = engine
        self.upstream = upstream_base(upstream)
        self._upstream_url = httpx.URL(self.upstream)
        self._prefix = self._upstream_url.raw_path.rstrip(b"/")
        self.header_prefix = header_prefix
        self.trusted_proxies = trusted_proxies or TrustedProxies()
        self.client_cert_header = client_cert_header
        self.required_scopes = tuple(required_scopes)
        # The upstream's declared operations (--openapi), each with its own requirements
        # (required_scopes above is then unused); None: every path, one check.
        self.routes = routes
        # trust_env=False: HTTP(S)_PROXY of the environment must not reroute traffic.
        self._client = client or httpx.AsyncClient(
            timeout=DEFAULT_TIMEOUT,
            follow_redirects=False,
            trust_env=False,
            # A proxy must not keep its callers' cookies: a jar whose policy accepts none.
            cookies=httpx.Cookies(CookieJar(DefaultCookiePolicy(allowed_domains=[]))),
        )
        self._max_body = max_signed_body_bytes
        self._on_shutdown = on_shutdown
        self._strip = stripped_request_headers(header_prefix)
        self._own_prefix = own_prefix(header_prefix)
        self._identity = IdentityNames.of(header_prefix)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # no WebSocket proxying (the server runs with ws="none")
        headers = header_map(scope)
        body = BufferedBody(receive, self._max_body)
        try:
            target = checked_target(scope)
            if self.routes is None:
                principal = await authenticate_scope(
                    self.engine,
                    scope,
                    body.read,
                    header_prefix=self.header_prefix,
                    trusted_proxies=self.trusted_proxies,
                    client_cert_header=self.client_cert_header,
                    required_scopes=self.required_scopes,
                    headers=headers,
                    door="gateway",
                )
                caller = Caller.of(principal)
            else:
                caller = await self._enforce(self.routes, scope, headers, body, target)
        except KeyguardError as error:
            await send_problem(send, error)
            return
        await self._forward(scope, body, caller, self._prefix + target, send)

    async def _enforce(
        self,
        routes: RouteTable,
        scope: Scope,
        headers: dict[str, str],
        body: BufferedBody,
        target: bytes,
    ) -> Caller:
        """The declared operation's requirements, met (``--openapi``), or the refusal."""
        path = target.split(b"?", 1)[0].decode("ascii")  # checked: printable ASCII
        operation = routes.match(scope["method"], path)
        if operation is None:
            # Before any credential is looked at: the answer says nothing about the caller.
            raise OperationNotDeclared()
        return await enforce(
            self.engine,
            operation.security,
            headers,
            lambda: facts_from_scope(
                scope, headers, self.header_prefix, self.trusted_proxies, self.client_cert_header
            ),
            body.read,
        )

    async def _forward(
        self, scope: Scope, body: BufferedBody, caller: Caller, target: bytes, send: Send
    ) -> None:
        # httpx.Request, not client.build_request: no client default headers (Accept,
        # Accept-Encoding, User-Agent) are added to what the client sent. The URL's path
        # cannot be re-normalised (checked_target refused dot segments), and the
        # "target" extension puts the raw bytes on the wire as they came.
        request = httpx.Request(
            scope["method"],
            self._upstream_url.copy_with(raw_path=target),
            headers=self._upstream_headers(scope, caller),
            content=_request_content(scope, body),
            extensions={"target": target, "timeout": self._client.timeout.as_dict()},
        )
        try:
            response = await self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            log.warning("upstream request failed: %s", type(exc).__name__)
            await send_problem(send, BadGateway())
            return
        try:
            out = _response_headers(response)
            ratelimit = caller.ratelimit
            if ratelimit is not None:
                out.extend(ratelimit.header_items())
            await send(
                {"type": "http.response.start", "status": response.status_code, "headers": out}
            )
            # Raw bytes: content-encoding passes through untouched, as does Content-Length.
            async for chunk in response.aiter_raw():
                if chunk:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except httpx.HTTPError as exc:
            # Headers are gone already: abort, so the client sees a truncated response
            # (the server closes the connection) rather than a complete-looking one.
            log.warning("upstream response failed mid-stream: %s", type(exc).__name__)
            raise
        finally:
            await response.aclose()

    def _upstream_headers(self, scope: Scope, caller: Caller) -> list[tuple[bytes, bytes]]:
        raw: list[tuple[bytes, bytes]] = scope["headers"]
        listed = connection_tokens(v for n, v in raw if n.lower() == b"connection")
        out: list[tuple[bytes, bytes]] = []
        forwarded_for: list[bytes] = []
        host = b""
        accept_encoding = False
        for name, value in raw:
            lower = name.lower()
            accept_encoding = accept_encoding or lower == b"accept-encoding"
            if lower == b"x-forwarded-for":
                forwarded_for.append(value)
            elif lower == b"host":
                host = value
            canon = canonical_name(lower)
            if canon in self._strip or canon.startswith(self._own_prefix) or lower in listed:
                continue
            if lower == b"authorization" and is_keyguard_authorization(value):
                continue
            out.append((lower, value))
        if not accept_encoding:
            # No Accept-Encoding means "any coding" (RFC 9110 §12.5.3): ask for none, as
            # the client may not decode what would be passed through raw.
            out.append((b"accept-encoding", b"identity"))
        client = scope.get("client")
        peer = client[0] if client else ""
        # From a trusted proxy, keep the chain it vouches for and append it; from anyone
        # else, whatever X-Forwarded-For the client wrote is dropped.
        chain = b", ".join(forwarded_for) if self.trusted_proxies.trusts(peer) else b""
        xff = chain + b", " + peer.encode() if chain else peer.encode()
        if xff:
            out.append((b"x-forwarded-for", xff))
        # The engine refuses anything that did not reach us over HTTPS.
        out.append((b"x-forwarded-proto", b"https"))
        if host:
            out.append((b"x-forwarded-host", host))
        # The upstream logs the id our log and our response carry (the edge sets it);
        # whatever id the client sent is its own business (dropped above).
        request_id = REQUEST_ID.get()
        if request_id:
            out.append((b"x-request-id", request_id.encode("ascii")))
        # Every client copy of these was dropped above (own prefix): only ours arrive.
        out.extend(self._identity.headers(caller))
        return out

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._client.aclose()
                if self._on_shutdown is not None:
                    await self._on_shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _request_content(scope: Scope, body: BufferedBody) -> bytes | AsyncIterator[bytes]:
    if body.read_any:  # a signed request: its whole body was read for the check
        return body.data
    if not any(
        (name == b"content-length" and value.strip() != b"0") or name == b"transfer-encoding"
        for name, value in scope["headers"]
    ):
        return b""

    async def stream() -> AsyncIterator[bytes]:
        # Straight from the client to the upstream, never held whole in memory.
        while True:
            message: Message = await body.receive()
            if message["type"] != "http.request":
                raise httpx.ReadError("client disconnected")
            chunk = message.get("body", b"")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return

    return stream()


def _response_headers(response: httpx.Response) -> list[Any]:
    raw = response.headers.raw
    listed = connection_tokens(v for n, v in raw if n.lower() == b"connection")
    return [
        (name.lower(), value)
        for name, value in raw
        if name.lower() not in _DROPPED_RESPONSE_HEADERS and name.lower() not in listed
    ]
