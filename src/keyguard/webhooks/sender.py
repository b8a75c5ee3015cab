"""One webhook delivery attempt, safe against SSRF and DNS rebinding.

DNS pinning: the host is resolved, every answer checked, and the request is sent to
the checked IP literal (``https://203.0.113.7:443/path``) so nothing resolves the
name again. The original name travels in the ``Host`` header and, through httpcore's
documented ``sni_hostname`` request extension, as TLS SNI and as the name the
certificate is verified against.

A :class:`SenderPool` (one per worker) adds two things a one-off call does without:

- **keep-alive**: one connection pool per ``(partition, scheme, host, checked IP, port,
  TLS context)``. A pooled connection was opened to that checked IP (and, for https,
  verified for that host name), and it is only used for a request whose fresh check
  produced that same IP for that same name, so reusing it connects nowhere new.
- **a short positive DNS cache** (``dns_ttl``, 30 s by default) of answers that passed
  the check. Cached answers are checked again on every use against the current
  ``allow_private``; failures and refusals are never cached, so a rebinding answer is
  only ever seen by a fresh resolution, which checks it before anything is sent.
"""

from __future__ import annotations

import contextlib
import functools
import ssl
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import anyio
import httpx

from keyguard.webhooks import attempt as codes
from keyguard.webhooks._host import IPAddress
from keyguard.webhooks._ranges import Network
from keyguard.webhooks.attempt import AttemptResult
from keyguard.webhooks.retry_after import parse_retry_after
from keyguard.webhooks.ssrf import (
    ParsedUrl,
    Resolver,
    UnsafeWebhookUrl,
    in_allow_private,
    resolve_safe,
    validate_webhook_url,
)

USER_AGENT = "Keyguard-Webhooks/1"

_PoolKey = tuple[str, str, str, str, int, ssl.SSLContext]
_DnsKey = tuple[str, int, Resolver | None]


# Failures after which the next attempt resolves afresh: the host may have moved.
_RESOLVE_AGAIN = frozenset({codes.CONNECT_FAILED, codes.TLS_ERROR, codes.TIMEOUT})


class _Failed(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(slots=True)
class _Pooled:
    transport: httpx.AsyncHTTPTransport
    in_use: int = 0
    last_used: float = 0.0


class SenderPool:
    """Keep-alive connections and a short cache of checked DNS answers, for one worker.

    Bounded: at most ``max_pools`` idle connection pools are kept (least recently used
    closed first), each keeping at most ``keepalive_per_pool`` idle connections for at
    most ``idle_seconds``. The worker's own limits bound connections in use. Close it
    with :meth:`aclose`.
    """

    def __init__(
        self,
        *,
        dns_ttl: float = 30.0,
        idle_seconds: float = 30.0,
        max_pools: int = 256,
        keepalive_per_pool: int = 8,
        max_dns_entries: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.dns_ttl = dns_ttl
        self.idle_seconds = idle_seconds
        self.max_pools = max_pools
        self.keepalive_per_pool = keepalive_per_pool
        self.max_dns_entries = max_dns_entries
        self.clock = clock
        self._pools: OrderedDict[_PoolKey, _Pooled] = OrderedDict()
        self._dns: OrderedDict[_DnsKey, tuple[float, tuple[IPAddress, ...]]] = OrderedDict()
        self._next_sweep = 0.0

    # ---- DNS: positive answers only, re-checked on every use ----------------------------

    def cached_answer(self, key: _DnsKey) -> tuple[IPAddress, ...] | None:
        found = self._dns.get(key)
        if found is None:
            return None
        expires, addresses = found
        if self.clock() >= expires:
            del self._dns[key]
            return None
        return addresses

    def remember_answer(self, key: _DnsKey, addresses: Sequence[IPAddress]) -> None:
        """Store an answer that passed :func:`resolve_safe` (callers only)."""
        if self.dns_ttl <= 0:
            return
        self._dns[key] = (self.clock() + self.dns_ttl, tuple(addresses))
        self._dns.move_to_end(key)
        while len(self._dns) > self.max_dns_entries:
            self._dns.popitem(last=False)

    def forget_answer(self, key: _DnsKey) -> None:
        self._dns.pop(key, None)

    # ---- connection pools ---------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def transport(
        self, key: _PoolKey, ssl_context: ssl.SSLContext
    ) -> AsyncIterator[httpx.AsyncHTTPTransport]:
        await self._sweep(self.clock(), room=key not in self._pools)
        pooled = self._pools.get(key)
        if pooled is None:
            pooled = self._pools[key] = _Pooled(
                _new_transport(ssl_context, self.keepalive_per_pool, self.idle_seconds)
            )
        self._pools.move_to_end(key)
        pooled.in_use += 1
        try:
            yield pooled.transport
        finally:
            pooled.in_use -= 1
            pooled.last_used = self.clock()

    async def _sweep(self, now: float, *, room: bool) -> None:
        """Close pools idle for ``idle_seconds`` (at most once a second), and the least
        recently used idle ones while a new pool would exceed ``max_pools``."""
        excess = len(self._pools) + room - self.max_pools
        if now < self._next_sweep and excess <= 0:
            return
        self._next_sweep = now + 1.0
        for key, pooled in list(self._pools.items()):  # least recently used first
            if pooled.in_use:
                continue
            if excess > 0 or now - pooled.last_used >= self.idle_seconds:
                del self._pools[key]
                excess -= 1
                await pooled.transport.aclose()

    @property
    def open_pools(self) -> int:
        return len(self._pools)

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), OrderedDict()
        self._dns.clear()
        for pooled in pools:
            with contextlib.suppress(Exception):
                await pooled.transport.aclose()


async def send_webhook(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    allow_private: Sequence[Network],
    timeout: float = 10.0,  # noqa: ASYNC109 - the outbox's API; enforced with fail_after
    max_response_bytes: int = 4096,
    resolver: Resolver | None = None,
    ssl_context: ssl.SSLContext | None = None,
    pool: SenderPool | None = None,
    partition: str = "",
) -> AttemptResult:
    """POST ``body`` to ``url`` once and report what happened; never raises for I/O.

    ``timeout`` bounds the whole attempt (DNS, connect, TLS, response). At most
    ``max_response_bytes`` of the response body are read; a longer body is cut, and the
    attempt says so (``error`` ``response_truncated``, the status code unchanged).
    ``ssl_context`` replaces the default trust store (tests, private CAs); verification
    itself is never disabled. With a ``pool``, connections are kept alive (separately per
    ``partition``, e.g. one per destination) and checked DNS answers are reused for a
    short while; without one, every call resolves, connects and closes on its own.
    """
    started = time.perf_counter()
    status: int | None = None
    excerpt = ""
    retry_after: float | None = None
    error: str | None = None
    parsed: ParsedUrl | None = None
    try:
        with anyio.fail_after(timeout):
            parsed = _validate(url, allow_private)
            addresses = await _resolve(parsed, allow_private, resolver, pool)
            response = await _post_pinned(
                parsed,
                addresses,
                body,
                headers,
                timeout,
                max_response_bytes,
                ssl_context or _default_ssl_context(),
                pool,
                partition,
            )
        status, excerpt, retry_after, truncated = response
        if 300 <= status < 400:
            error = codes.REDIRECT_NOT_FOLLOWED
        elif truncated:
            error = codes.RESPONSE_TRUNCATED
    except _Failed as exc:
        error = exc.code
        if pool is not None and parsed is not None and exc.code in _RESOLVE_AGAIN:
            pool.forget_answer((parsed.host, parsed.port, resolver))
    except TimeoutError:
        error = codes.TIMEOUT
        if pool is not None and parsed is not None:
            pool.forget_answer((parsed.host, parsed.port, resolver))
    latency_ms = (time.perf_counter() - started) * 1000
    return AttemptResult(url, status, latency_ms, excerpt, error, retry_after)


def _validate(url: str, allow_private: Sequence[Network]) -> ParsedUrl:
    # Re-checked at every send: allow_private may have shrunk since registration.
    try:
        return validate_webhook_url(url, allow_private)
    except UnsafeWebhookUrl as exc:
        raise _Failed(exc.code) from exc


async def _resolve(
    parsed: ParsedUrl,
    allow_private: Sequence[Network],
    resolver: Resolver | None,
    pool: SenderPool | None,
) -> list[IPAddress]:
    key: _DnsKey = (parsed.host, parsed.port, resolver)
    cached = pool.cached_answer(key) if pool is not None and parsed.ip is None else None
    if cached is not None:
        answer = cached

        async def from_cache(host: str, port: int) -> Sequence[IPAddress]:
            return answer

        lookup: Resolver | None = from_cache
    else:
        lookup = resolver
    try:
        # A cached answer goes through exactly the same check as a fresh one.
        addresses = await resolve_safe(parsed.host, parsed.port, allow_private, lookup)
    except UnsafeWebhookUrl as exc:
        if pool is not None:
            pool.forget_answer(key)
        raise _Failed(exc.code) from exc
    except OSError as exc:  # ResolutionFailed, or whatever an injected resolver raises
        raise _Failed(codes.DNS_FAILED) from exc
    # Plain http is only for local development towards allowed private networks.
    if parsed.scheme == "http" and not all(in_allow_private(a, allow_private) for a in addresses):
        raise _Failed(codes.HTTPS_REQUIRED)
    if pool is not None and cached is None and parsed.ip is None:
        pool.remember_answer(key, addresses)  # only answers that passed every check
    return addresses


async def _post_pinned(
    parsed: ParsedUrl,
    addresses: list[IPAddress],
    body: bytes,
    headers: Mapping[str, str],
    io_timeout: float,
    max_response_bytes: int,
    ssl_context: ssl.SSLContext,
    pool: SenderPool | None,
    partition: str,
) -> tuple[int, str, float | None, bool]:
    request_headers = _request_headers(headers, parsed.host_header)
    extensions = _extensions(io_timeout, None if parsed.ip is not None else parsed.host)
    last_error = codes.CONNECT_FAILED
    # Try each checked address in turn (as a dual-stack client would); only a refused
    # or unreachable connection moves on to the next one.
    for ip in addresses:
        request = httpx.Request(
            "POST", _pinned_url(parsed, ip), content=body, headers=request_headers,
            extensions=extensions,
        )  # fmt: skip
        try:
            if pool is None:
                async with _one_off_transport(ssl_context) as transport:
                    return await _post_once(transport, request, max_response_bytes)
            key = (partition, parsed.scheme, parsed.host, str(ip), parsed.port, ssl_context)
            async with pool.transport(key, ssl_context) as transport:
                return await _post_once(transport, request, max_response_bytes)
        except httpx.ConnectError as exc:
            last_error = codes.TLS_ERROR if _caused_by_tls(exc) else codes.CONNECT_FAILED
            if last_error == codes.TLS_ERROR:
                break
        except httpx.TimeoutException as exc:
            raise _Failed(codes.TIMEOUT) from exc
        except httpx.TransportError as exc:
            raise _Failed(codes.NETWORK_ERROR) from exc
    raise _Failed(last_error)


_DEFAULT_HEADERS = (
    ("User-Agent", USER_AGENT),
    ("Accept", "*/*"),
    ("Content-Type", "application/json"),
)
_OURS = frozenset({"host", "accept-encoding"})


def _request_headers(headers: Mapping[str, str], host: str) -> list[tuple[str, str]]:
    """The defaults the caller did not set, the caller's, then ours, each name once: the
    ``Host`` of the original name (the URL holds the checked IP), and identity encoding
    only (a compressed body could expand far past ``max_response_bytes``). A plain list:
    httpx makes its headers from it once per attempt."""
    given = {name.lower() for name in headers}
    items = [(name, value) for name, value in _DEFAULT_HEADERS if name.lower() not in given]
    items += [(name, value) for name, value in headers.items() if name.lower() not in _OURS]
    items += (("Host", host), ("Accept-Encoding", "identity"))
    return items


@functools.lru_cache(maxsize=256)
def _extensions(io_timeout: float, sni_hostname: str | None) -> Mapping[str, object]:
    """httpcore's request options, made once per timeout and host (read-only)."""
    extensions: dict[str, object] = {
        "timeout": MappingProxyType(dict.fromkeys(("connect", "read", "write", "pool"), io_timeout))
    }
    if sni_hostname is not None:
        # The name TLS sends and verifies the certificate against (the URL has the IP).
        extensions["sni_hostname"] = sni_hostname
    return MappingProxyType(extensions)


@contextlib.asynccontextmanager
async def _one_off_transport(
    ssl_context: ssl.SSLContext,
) -> AsyncIterator[httpx.AsyncHTTPTransport]:
    transport = _new_transport(ssl_context, 0, 0.0)
    try:
        yield transport
    finally:
        await transport.aclose()


def _new_transport(
    ssl_context: ssl.SSLContext, keepalive: int, idle_seconds: float
) -> httpx.AsyncHTTPTransport:
    # A bare transport: no proxies from the environment (they would resolve the name
    # themselves), no cookies carried between attempts, no redirects followed. No cap on
    # connections in use either: the worker bounds attempts in flight.
    return httpx.AsyncHTTPTransport(
        verify=ssl_context,
        limits=httpx.Limits(
            max_connections=None,
            max_keepalive_connections=keepalive,
            keepalive_expiry=idle_seconds,
        ),
    )


async def _post_once(
    transport: httpx.AsyncHTTPTransport, request: httpx.Request, max_response_bytes: int
) -> tuple[int, str, float | None, bool]:
    """Status, body excerpt, Retry-After, and whether the body was cut."""
    response = await transport.handle_async_request(request)
    try:
        received = bytearray()
        truncated = False
        # Stop reading past the limit; closing the stream early then drops the connection
        # (only a response read to its end goes back to the keep-alive pool).
        async for chunk in response.aiter_raw():
            received += chunk
            if len(received) > max_response_bytes:
                truncated = True
                break
        excerpt = bytes(received[:max_response_bytes]).decode("utf-8", errors="replace")
        retry_after = parse_retry_after(response.headers.get("Retry-After"), time.time())
        return response.status_code, excerpt, retry_after, truncated
    finally:
        await response.aclose()


@functools.lru_cache(maxsize=1024)  # parsing a URL costs more than the rest of a request
def _pinned_url(parsed: ParsedUrl, ip: IPAddress) -> httpx.URL:
    literal = f"[{ip}]" if ip.version == 6 else str(ip)
    return httpx.URL(f"{parsed.scheme}://{literal}:{parsed.port}{parsed.target}")


def _caused_by_tls(exc: BaseException) -> bool:
    # httpx wraps httpcore's error, which wraps the ssl module's: walk the chain.
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            break
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@functools.cache
def _default_ssl_context() -> ssl.SSLContext:
    # Built once: loading the CA bundle for every attempt costs milliseconds.
    return httpx.create_ssl_context()


__all__ = ["USER_AGENT", "SenderPool", "send_webhook"]
