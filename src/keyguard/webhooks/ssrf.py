"""SSRF guard for outbound webhooks: which URLs may be registered, which addresses dialled.

:func:`validate_webhook_url` looks at the URL alone. Registration
(:func:`validate_for_registration`) also resolves a host name, with a short timeout, and
refuses it if any answer is forbidden; a name that does not resolve yet is accepted. At
send time the name is resolved again and every answer checked (:func:`resolve_safe`), and
the sender dials exactly the checked address so a second DNS answer cannot rebind it.

    >>> validate_webhook_url("https://hooks.example.com/in", allow_private=[]).host
    'hooks.example.com'
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from keyguard.webhooks._host import HostError, IPAddress, parse_host
from keyguard.webhooks._ranges import Network, classify

Resolver = Callable[[str, int], Awaitable[Sequence[str | IPAddress]]]
"""``async (host, port) -> addresses``; injectable so tests never touch real DNS."""

_MAX_URL_LENGTH = 2048
# Registration answers an API call: a slow resolver must not hold it up for long.
REGISTRATION_DNS_TIMEOUT = 2.0
_DEFAULT_PORTS = {"https": 443, "http": 80}


class UnsafeWebhookUrl(ValueError):
    """A webhook URL that is malformed or points somewhere it must not.

    ``code`` is stable: ``invalid_url``, ``https_required`` or ``ssrf_blocked``. The
    HTTP edge answers 422 with it; ``message`` never contains resolved addresses.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ResolutionFailed(OSError):
    """The host did not resolve (yet); deliveries retry, registration accepts it."""

    code = "dns_failed"


@dataclass(frozen=True, slots=True)
class ParsedUrl:
    url: str  # normalized form, safe to store and display
    scheme: str  # "https" or "http"
    host: str  # lower-case, IDNA-encoded, no brackets, no trailing dot
    port: int  # explicit or the scheme's default
    target: str  # path and query, as sent on the request line
    ip: IPAddress | None  # set when the host is an IP literal

    @property
    def host_header(self) -> str:
        """The ``Host`` value the receiver expects (RFC 9110 §7.2)."""
        return _authority(self.scheme, self.host, self.port)


def classify_address(ip: IPAddress | str, allow_private: Sequence[Network] = ()) -> str | None:
    """The reason a webhook must not connect to ``ip`` (e.g. ``"loopback"``), or None.

    Addresses inside ``allow_private`` are allowed, except cloud metadata endpoints,
    which stay forbidden whatever the allow list says. A string that is not an IP
    address raises ``ValueError``.
    """
    return classify(ipaddress.ip_address(ip) if isinstance(ip, str) else ip, allow_private)


def validate_webhook_url(url: str, allow_private: Sequence[Network]) -> ParsedUrl:
    """Check a URL without DNS; raise :class:`UnsafeWebhookUrl` if refused.

    IP literals and ``localhost`` names are judged here; a host name is not resolved
    (see :func:`validate_for_registration` and :func:`resolve_safe` for that).
    """
    parsed = _parse(url)
    ip = parsed.ip
    if ip is None and _is_localhost_name(parsed.host):
        # RFC 6761 §6.3: "localhost" names are loopback by definition, whatever DNS says.
        ip = ipaddress.ip_address("127.0.0.1")
    if ip is not None:
        reason = classify(ip, allow_private)
        if reason is not None:
            raise UnsafeWebhookUrl("ssrf_blocked", f"webhook URLs must not target {reason} hosts")
    if parsed.scheme == "http" and not _plain_http_possible(parsed.ip, allow_private):
        raise UnsafeWebhookUrl("https_required", "webhook URLs must use https")
    return parsed


async def validate_for_registration(
    url: str,
    allow_private: Sequence[Network],
    *,
    resolver: Resolver | None = None,
    timeout: float = REGISTRATION_DNS_TIMEOUT,  # noqa: ASYNC109 - enforced with move_on_after
) -> ParsedUrl:
    """:func:`validate_webhook_url`, then resolve a host name and refuse it when ANY
    answer is forbidden (``ssrf_blocked``), or, for plain ``http``, outside
    ``allow_private`` (``https_required``).

    A name that does not resolve within ``timeout`` seconds (no such name, no answer) is
    accepted: it may be created later, and every send resolves and checks it again.

        parsed = await validate_for_registration(url, settings.webhook_private_networks)
    """
    parsed = validate_webhook_url(url, allow_private)
    if parsed.ip is not None or _is_localhost_name(parsed.host):
        return parsed  # judged above, without DNS
    addresses = await _registration_lookup(parsed, allow_private, resolver, timeout)
    if parsed.scheme == "http" and not all(in_allow_private(a, allow_private) for a in addresses):
        raise UnsafeWebhookUrl("https_required", "webhook URLs must use https")
    return parsed


# A lookup that outlives its timeout keeps a resolver thread busy (getaddrinfo cannot be
# cancelled), and the process shares a few of those with delivery and database
# connections. So registration holds at most this many lookups at once, each until it
# really ends; past that, a URL is accepted unchecked (every send checks it anyway).
MAX_REGISTRATION_LOOKUPS = 2
_lookups: set[asyncio.Task[list[IPAddress]]] = set()


async def _registration_lookup(
    parsed: ParsedUrl,
    allow_private: Sequence[Network],
    resolver: Resolver | None,
    timeout: float,  # noqa: ASYNC109 - the lookup itself must outlive it (see above)
) -> list[IPAddress]:
    """The host's addresses (``UnsafeWebhookUrl`` if any is forbidden); ``[]`` when the
    name does not resolve in time or no lookup slot is free."""
    if len(_lookups) >= MAX_REGISTRATION_LOOKUPS:
        return []
    task = asyncio.ensure_future(resolve_safe(parsed.host, parsed.port, allow_private, resolver))
    _lookups.add(task)
    task.add_done_callback(_lookup_done)
    try:
        return await asyncio.wait_for(asyncio.shield(task), timeout)
    except (TimeoutError, OSError):  # OSError: ResolutionFailed, or an injected resolver's
        return []


def _lookup_done(task: asyncio.Task[list[IPAddress]]) -> None:
    _lookups.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: a late failure is expected, not worth a log line


def _is_localhost_name(host: str) -> bool:
    name = host.lower().rstrip(".")
    return name == "localhost" or name.endswith(".localhost")


async def resolve_safe(
    host: str,
    port: int,
    allow_private: Sequence[Network],
    resolver: Resolver | None = None,
) -> list[IPAddress]:
    """Resolve ``host`` and return its addresses, refusing if ANY of them is forbidden.

    One forbidden answer among public ones is treated as an attack, not skipped.
    """
    try:
        addresses = [_host_ip(host)]
    except ValueError:
        answers = await (resolver or system_resolver)(host, port)
        try:
            addresses = list(dict.fromkeys(_host_ip(str(a)) for a in answers))
        except ValueError as exc:
            raise ResolutionFailed(f"{host} resolved to something that is not an IP") from exc
    if not addresses:
        raise ResolutionFailed(f"{host} has no addresses")
    for ip in addresses:
        reason = classify(ip, allow_private)
        if reason is not None:
            raise UnsafeWebhookUrl("ssrf_blocked", f"the host resolves to a {reason} address")
    return addresses


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """Resolve through the running loop's ``getaddrinfo`` (TCP answers only)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except (socket.gaierror, UnicodeError) as exc:
        raise ResolutionFailed(f"{host} did not resolve") from exc
    return [_host_ip(str(info[4][0])) for info in infos]


@functools.lru_cache(maxsize=1024)  # pure; every send of every delivery asks again
def _host_ip(text: str) -> IPAddress:
    # Scope ids ("fe80::1%eth0") from getaddrinfo are dropped before classification.
    return ipaddress.ip_address(text.split("%", 1)[0])


def in_allow_private(ip: IPAddress, allow_private: Sequence[Network]) -> bool:
    """True when ``ip`` is inside one of the operator's allowed private networks."""
    return any(ip.version == n.version and ip in n for n in allow_private)


def _plain_http_possible(ip: IPAddress | None, allow_private: Sequence[Network]) -> bool:
    # Plain http is a local-development affordance: only towards allow_private
    # addresses. A host name is accepted here and its addresses checked at send time.
    if not allow_private:
        return False
    return ip is None or in_allow_private(ip, allow_private)


@functools.lru_cache(maxsize=1024)  # pure (a refusal raises, and is not kept)
def _parse(url: str) -> ParsedUrl:
    if len(url) > _MAX_URL_LENGTH:
        raise UnsafeWebhookUrl("invalid_url", "the URL is too long")
    # Whitespace, control characters and backslashes are read differently by
    # different URL parsers; refusing them removes that class of bypass.
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F or c == "\\" for c in url):
        raise UnsafeWebhookUrl("invalid_url", "the URL contains forbidden characters")
    try:
        parts = urlsplit(url)
        u = httpx.URL(url)
    except (ValueError, httpx.InvalidURL) as exc:
        raise UnsafeWebhookUrl("invalid_url", "the URL is not valid") from exc
    scheme = u.scheme
    if scheme not in _DEFAULT_PORTS:
        raise UnsafeWebhookUrl("invalid_url", "the URL scheme must be https")
    # httpx reads "https://@host" as empty userinfo, so look at the raw authority too.
    if u.userinfo or "@" in parts.netloc:
        raise UnsafeWebhookUrl("invalid_url", "credentials in webhook URLs are not allowed")
    try:
        host, ip = parse_host(u.raw_host.decode("ascii"))
    except (HostError, UnicodeDecodeError) as exc:
        raise UnsafeWebhookUrl("invalid_url", str(exc)) from exc
    port = u.port if u.port is not None else _DEFAULT_PORTS[scheme]
    if not 0 < port < 65536:
        raise UnsafeWebhookUrl("invalid_url", "the URL port is out of range")
    target = u.raw_path.decode("ascii")
    authority = _authority(scheme, host, port)
    return ParsedUrl(f"{scheme}://{authority}{target}", scheme, host, port, target, ip)


def _authority(scheme: str, host: str, port: int) -> str:
    name = f"[{host}]" if ":" in host else host
    return name if port == _DEFAULT_PORTS[scheme] else f"{name}:{port}"


__all__ = [
    "REGISTRATION_DNS_TIMEOUT",
    "ParsedUrl",
    "ResolutionFailed",
    "Resolver",
    "UnsafeWebhookUrl",
    "classify_address",
    "in_allow_private",
    "resolve_safe",
    "system_resolver",
    "validate_for_registration",
    "validate_webhook_url",
]
