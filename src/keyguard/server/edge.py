"""The one outer ASGI layer every request passes: guards, response headers, access log,
and the hot routes, served before the application.

It does in one ``send`` wrapper what used to take five nested ones (HSTS, request limits,
default ``no-store``, strict JSON, then Starlette's and FastAPI's own), each copying the
response-start message: a protected ``GET`` ran at a third of a bare Starlette app's
speed, and the checks themselves were 7 % of its time (docs/benchmarks.md, issue 11).

For every HTTP request, in order:

1. an ``X-Request-Id`` (CONTRACT §11), set in :data:`~keyguard.server.logs.REQUEST_ID`
   for every log line written while serving it;
2. refusals before anything parses the request: a NUL in the path or query (400), headers
   over ``max_header_bytes`` (431), a declared body over the route's limit (413);
3. a request that carries a body is counted as it is read (413 past the limit) and, if
   JSON, read whole and checked strictly (:mod:`keyguard.api.json_body`);
4. a ``GET`` (or ``HEAD``) without a body whose path is a hot route goes to that route's handler,
   which writes its response directly: no router, no dependency solving, no exception
   middleware (the edge turns a :class:`KeyguardError` into problem+json itself);
   anything else goes to the application;
5. the response start gets ``X-Request-Id``, ``Strict-Transport-Security`` over HTTPS
   (RFC 6797 §7.1; never over plain HTTP, §7.2) unless the app set its own, and
   ``Cache-Control: no-store`` unless the app set a policy (keys, secrets and signed
   links travel in bodies; no cache should keep a copy);
6. one access-log entry, appended to a batch written off the request path.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keyguard.api.json_body import is_json, strict_json
from keyguard.api.limits import Limits, nul_in, read_within, refuse
from keyguard.api.problems import caller_ratelimit
from keyguard.errors import HeadersTooLarge, InternalError, KeyguardError, PayloadTooLarge
from keyguard.server.access_log import AccessLog, Entry
from keyguard.server.logs import REQUEST_ID, new_request_id
from keyguard.wire import send_problem

__all__ = ["Edge", "HotHandler", "HotRoute"]

log = structlog.get_logger("keyguard.api")

# (scope, send, path parameter); the request has no body. A handler raises only before
# its first ``send`` (it computes its whole answer first); the edge answers the error.
HotHandler = Callable[[Scope, Send, str], Awaitable[None]]

_HSTS = b"strict-transport-security"
_REQUEST_ID = b"x-request-id"
_CACHE_CONTROL = b"cache-control"
_NO_STORE = (_CACHE_CONTROL, b"no-store")
_BODYLESS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class HotRoute:
    """``GET prefix`` exactly, or ``GET prefix{param}`` with one non-empty path segment
    as the parameter (``prefix`` then ends with ``/``)."""

    prefix: str
    handler: HotHandler
    exact: bool = False


class Edge:
    """Example (what :func:`keyguard.app.create_asgi` builds)::

        Edge(app, limits=Limits(max_body_bytes=1 << 20), hot=[HotRoute("/healthz", h, True)])

    Without ``limits`` the edge only adds the response headers and the access log (the
    gateway's upstream and the HTTP redirect listener keep their own caching policy with
    ``default_no_store=False``).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        limits: Limits | None = None,
        hot: tuple[HotRoute, ...] | list[HotRoute] = (),
        default_no_store: bool = True,
        hsts_max_age: int = 63072000,
        access_log: AccessLog | None = None,
    ) -> None:
        self.app = app
        self.limits = limits
        self.default_no_store = default_no_store
        self.hsts = (_HSTS, f"max-age={int(hsts_max_age)}; includeSubDomains".encode("latin-1"))
        self.access_log = access_log
        self._strict = _strict_json_app(app)
        self._exact: dict[str, HotHandler] = {r.prefix: r.handler for r in hot if r.exact}
        self._prefixed: tuple[tuple[str, HotHandler], ...] = tuple(
            (r.prefix, r.handler) for r in hot if not r.exact
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        arrived = time.time()
        started = time.perf_counter()
        request_id = new_request_id()
        REQUEST_ID.set(request_id)
        added: list[tuple[bytes, bytes]] = [(_REQUEST_ID, request_id.encode("ascii"))]
        https = scope.get("scheme") == "https"
        status = 0

        async def edge_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                hsts = https
                no_store = self.default_no_store
                theirs = False
                for name, _ in headers:
                    lowered = name.lower()
                    if lowered == _CACHE_CONTROL:
                        no_store = False
                    elif lowered == _HSTS:
                        hsts = False
                    elif lowered == _REQUEST_ID:
                        theirs = True
                if theirs:
                    # One id per response, the one in our log (a proxied upstream may
                    # answer with its own; the gateway sends it ours).
                    headers = [(n, v) for n, v in headers if n.lower() != _REQUEST_ID]
                headers.extend(added)
                if hsts:
                    headers.append(self.hsts)
                if no_store:
                    headers.append(_NO_STORE)
                message["headers"] = headers
            await send(message)

        try:
            await self._route(scope, receive, edge_send)
        finally:
            if self.access_log is not None:
                self.access_log.record(
                    Entry(
                        arrived,
                        scope.get("client"),
                        scope["method"],
                        scope.get("raw_path") or scope["path"].encode("utf-8"),
                        scope.get("http_version", "1.1"),
                        status or 500,
                        time.perf_counter() - started,
                        request_id,
                    )
                )

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        limits = self.limits
        if limits is None:
            await self.app(scope, receive, send)
            return
        refusal = nul_in(scope)
        if refusal is not None:
            await refuse(send, refusal)
            return
        size = 0
        declared: bytes | None = None
        chunked = False
        content_type: bytes | None = None
        for name, value in scope["headers"]:
            size += len(name) + len(value)
            if name == b"content-length":
                declared = value
            elif name == b"transfer-encoding":
                chunked = True
            elif name == b"content-type":
                content_type = value
        if size > limits.max_header_bytes:
            await refuse(send, HeadersTooLarge())
            return
        method = scope["method"]
        if declared is None and not chunked:
            # No body (RFC 9112 §6.3): nothing to count or check.
            hot = self._match(scope["path"]) if method in ("GET", "HEAD") else None
            if hot is not None:
                await self._hot(hot[0], scope, _headless(send, method), hot[1])
            else:
                await self.app(scope, receive, send)
            return
        limit = limits.body_limit(method, scope["path"])
        if declared is not None:
            try:
                too_large = int(declared) > limit
            except ValueError:
                too_large = False  # the server refuses a malformed length itself
            if too_large:
                await refuse(send, PayloadTooLarge())
                return
        if method not in _BODYLESS and is_json(content_type):
            await read_within(self._strict, scope, receive, send, limit)
        else:
            await read_within(self.app, scope, receive, send, limit)

    def _match(self, path: str) -> tuple[HotHandler, str] | None:
        """The hot route for ``path`` and its parameter, if any."""
        handler = self._exact.get(path)
        if handler is not None:
            return handler, ""
        for prefix, handler in self._prefixed:
            param = path[len(prefix) :]
            if path.startswith(prefix) and param and "/" not in param:
                return handler, param
        return None

    async def _hot(self, handler: HotHandler, scope: Scope, send: Send, param: str) -> None:
        # What Starlette's exception middleware and our FastAPI handlers do for the app,
        # done here for the hot routes: every error becomes problem+json.
        try:
            await handler(scope, send, param)
        except KeyguardError as error:
            ratelimit = caller_ratelimit(scope)
            own = any(name.lower().startswith("ratelimit-") for name in error.headers)
            extra = ratelimit.header_items() if ratelimit is not None and not own else ()
            await send_problem(send, error, extra=extra)
        except Exception as error:
            log.error("unhandled_error", error_type=type(error).__name__)
            await send_problem(send, InternalError())


def _headless(send: Send, method: str) -> Send:
    """``send`` for a hot route: as is for GET; for HEAD, the same head without the body
    (RFC 9110 §9.3.2: the same checks and fields as GET, Content-Length included)."""
    if method != "HEAD":
        return send

    async def head_only(message: Message) -> None:
        if message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)

    return head_only


def _strict_json_app(app: ASGIApp) -> ASGIApp:
    async def checked(scope: Scope, receive: Receive, send: Send) -> None:
        await strict_json(app, scope, receive, send)

    return checked
