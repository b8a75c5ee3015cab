"""One webhook delivery attempt, safe against SSRF and DNS rebinding.

DNS pinning: the host is resolved once, every answer checked, and the request is sent
to the checked IP literal (``https://203.0.113.7:443/path``) so nothing resolves the
name again. The original name travels in the ``Host`` header and, through httpcore's
documented ``sni_hostname`` request extension, as TLS SNI and as the name the
certificate is verified against.
"""

from __future__ import annotations

import functools
import ssl
import time
from collections.abc import Mapping, Sequence

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


class _Failed(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


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
) -> AttemptResult:
    """POST ``body`` to ``url`` once and report what happened; never raises for I/O.

    ``timeout`` bounds the whole attempt (DNS, connect, TLS, response). At most
    ``max_response_bytes`` of the response body are read. ``ssl_context`` replaces the
    default trust store (tests, private CAs); verification itself is never disabled.
    """
    started = time.perf_counter()
    status: int | None = None
    excerpt = ""
    retry_after: float | None = None
    error: str | None = None
    try:
        with anyio.fail_after(timeout):
            parsed = _validate(url, allow_private)
            addresses = await _resolve(parsed, allow_private, resolver)
            response = await _post_pinned(
                parsed, addresses, body, headers, timeout, max_response_bytes, ssl_context
            )
        status, excerpt, retry_after = response
        if 300 <= status < 400:
            error = codes.REDIRECT_NOT_FOLLOWED
    except _Failed as exc:
        error = exc.code
    except TimeoutError:
        error = codes.TIMEOUT
    latency_ms = (time.perf_counter() - started) * 1000
    return AttemptResult(url, status, latency_ms, excerpt, error, retry_after)


def _validate(url: str, allow_private: Sequence[Network]) -> ParsedUrl:
    # Re-checked at every send: allow_private may have shrunk since registration.
    try:
        return validate_webhook_url(url, allow_private)
    except UnsafeWebhookUrl as exc:
        raise _Failed(exc.code) from exc


async def _resolve(
    parsed: ParsedUrl, allow_private: Sequence[Network], resolver: Resolver | None
) -> list[IPAddress]:
    try:
        addresses = await resolve_safe(parsed.host, parsed.port, allow_private, resolver)
    except UnsafeWebhookUrl as exc:
        raise _Failed(exc.code) from exc
    except OSError as exc:  # ResolutionFailed, or whatever an injected resolver raises
        raise _Failed(codes.DNS_FAILED) from exc
    # Plain http is only for local development towards allowed private networks.
    if parsed.scheme == "http" and not all(in_allow_private(a, allow_private) for a in addresses):
        raise _Failed(codes.HTTPS_REQUIRED)
    return addresses


async def _post_pinned(
    parsed: ParsedUrl,
    addresses: list[IPAddress],
    body: bytes,
    headers: Mapping[str, str],
    io_timeout: float,
    max_response_bytes: int,
    ssl_context: ssl.SSLContext | None,
) -> tuple[int, str, float | None]:
    # httpx.Headers so a caller's "host" or "accept-encoding" is replaced, not doubled.
    request_headers = httpx.Headers({"User-Agent": USER_AGENT, "Content-Type": "application/json"})
    request_headers.update(headers)
    request_headers["Host"] = parsed.host_header
    # Identity only: a compressed body could expand far past max_response_bytes.
    request_headers["Accept-Encoding"] = "identity"
    extensions = {} if parsed.ip is not None else {"sni_hostname": parsed.host}
    last_error = codes.CONNECT_FAILED
    async with httpx.AsyncClient(
        verify=ssl_context or _default_ssl_context(),
        trust_env=False,  # an environment proxy would resolve the name itself
        follow_redirects=False,
        timeout=httpx.Timeout(io_timeout),  # else httpx's 5 s default cuts in first
    ) as client:
        # Try each checked address in turn (as a dual-stack client would); only a
        # refused or unreachable connection moves on to the next one.
        for ip in addresses:
            try:
                return await _post_once(
                    client, _pinned_url(parsed, ip), body, request_headers, extensions,
                    max_response_bytes,
                )  # fmt: skip
            except httpx.ConnectError as exc:
                last_error = codes.TLS_ERROR if _caused_by_tls(exc) else codes.CONNECT_FAILED
                if last_error == codes.TLS_ERROR:
                    break
            except httpx.TimeoutException as exc:
                raise _Failed(codes.TIMEOUT) from exc
            except httpx.TransportError as exc:
                raise _Failed(codes.NETWORK_ERROR) from exc
    raise _Failed(last_error)


async def _post_once(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: httpx.Headers,
    extensions: dict[str, str],
    max_response_bytes: int,
) -> tuple[int, str, float | None]:
    async with client.stream(
        "POST", url, content=body, headers=headers, extensions=extensions
    ) as response:
        received = bytearray()
        # Stop reading at the limit; closing the stream then drops the connection.
        async for chunk in response.aiter_raw():
            received += chunk
            if len(received) >= max_response_bytes:
                break
        excerpt = bytes(received[:max_response_bytes]).decode("utf-8", errors="replace")
        retry_after = parse_retry_after(response.headers.get("Retry-After"), time.time())
        return response.status_code, excerpt, retry_after


def _pinned_url(parsed: ParsedUrl, ip: IPAddress) -> str:
    literal = f"[{ip}]" if ip.version == 6 else str(ip)
    return f"{parsed.scheme}://{literal}:{parsed.port}{parsed.target}"


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


__all__ = ["USER_AGENT", "send_webhook"]
