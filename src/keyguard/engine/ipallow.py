"""Per-key IP allowlists and the client address behind trusted proxies.

An allowlist is compiled once into sorted, disjoint integer intervals per address family,
so a look-up is one ``bisect`` whatever the number of ranges (10,000 is fine).

IPv4-mapped IPv6 (``::ffff:a.b.c.d``, RFC 4291 §2.5.5.2) *is* IPv4 here: a dual-stack
socket reports IPv4 clients that way, so such addresses are matched as IPv4, and an entry
inside ``::ffff:0:0/96`` (e.g. ``::ffff:10.0.0.0/104``) is stored as the IPv4 range it
denotes (``10.0.0.0/8``). A wider IPv6 entry such as ``::/0`` means "every IPv6 address"
and deliberately does *not* admit IPv4 clients: only an IPv4 entry or an explicit mapped
entry does.

Example::

    allow = IpAllowlist(["10.0.0.0/8", "2001:db8::/32"])
    allow.allows("10.1.2.3")          # True
    allow.allows("::ffff:10.1.2.3")   # True (mapped)
    allow.check("192.0.2.1")          # raises IpNotAllowed
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator
from functools import lru_cache
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

from keyguard.errors import IpNotAllowed

__all__ = [
    "IpAllowlist",
    "TrustedProxies",
    "parse_address",
    "parse_network",
    "resolve_client_ip",
]

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network

_MAPPED_V4 = IPv6Network("::ffff:0:0/96")
_MAX_SHOWN = 64  # how much of a bad value an error message repeats


UNKNOWN_NETWORK = "unknown"


def network_of(ip: object) -> str:
    """The /24 (IPv4) or /48 (IPv6) an address belongs to, as text (``UNKNOWN_NETWORK``
    when it is not an address): what "the same network" means for login alerts and usage
    anomalies. IPv4-mapped IPv6 is its IPv4 address; ``host:port`` forms are read too."""
    address = parse_address(ip if isinstance(ip, str | IPv4Address | IPv6Address) else None)
    if address is None:
        return UNKNOWN_NETWORK
    prefix = 24 if address.version == 4 else 48
    return str(ip_network(f"{address}/{prefix}", strict=False))


def _shown(text: str) -> str:
    return repr(text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "…")


def _is_plain(text: str) -> bool:
    # ipaddress is lenient about nothing we care about except: it would happily report a
    # zone id as part of the address (``fe80::1%eth0``), and we never want whitespace or
    # control characters to reach a stored, displayed entry.
    return bool(text) and text.isascii() and text.isprintable() and " " not in text


def parse_network(text: str) -> Network:
    """Parse an IPv4/IPv6 address or CIDR range; host bits are cleared (``strict=False``).

    Raises ``ValueError`` for empty input, whitespace, control characters, zone ids
    (``fe80::1%eth0``) and anything ``ipaddress`` does not understand.
    """
    if not isinstance(text, str) or not _is_plain(text) or "%" in text:
        raise ValueError(f"{_shown(str(text))} is not an IP address or CIDR range")
    try:
        return ip_network(text, strict=False)
    except ValueError:
        raise ValueError(f"{_shown(text)} is not an IP address or CIDR range") from None


def _unmap(addr: Address) -> Address:
    if isinstance(addr, IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _unmap_network(net: Network) -> Network:
    if isinstance(net, IPv6Network) and net.prefixlen >= 96 and net.subnet_of(_MAPPED_V4):
        # RFC 4291 §2.5.5.2: the low 32 bits are the IPv4 address.
        low = int(net.network_address) & 0xFFFFFFFF
        return IPv4Network((low, net.prefixlen - 96))
    return net


def parse_address(text: str | Address | None) -> Address | None:
    """An address as a client or proxy reports it, or ``None`` when it is not one.

    Accepts ``1.2.3.4``, ``1.2.3.4:5678``, ``2001:db8::1``, ``[2001:db8::1]`` and
    ``[2001:db8::1]:443`` (the forms proxies put in ``X-Forwarded-For``); IPv4-mapped IPv6
    comes back as IPv4. Zone ids, whitespace inside, and everything else give ``None``.
    """
    if text is None:
        return None
    if isinstance(text, IPv4Address | IPv6Address):
        return _unmap(text)
    return _parse_text(text)


# Client addresses repeat from request to request, and ipaddress parsing costs ~2 us.
# The cache is bounded, so forged X-Forwarded-For values cannot grow it.
@lru_cache(maxsize=8192)
def _parse_text(text: str) -> Address | None:
    text = text.strip(" \t")
    if not _is_plain(text) or "%" in text:
        return None
    if text.startswith("["):
        close = text.find("]")
        if close == -1:
            return None
        rest = text[close + 1 :]
        if rest and not (rest[0] == ":" and rest[1:].isdigit() and len(rest) <= 6):
            return None
        text = text[1:close]
        if ":" not in text:  # brackets are for IPv6 only (RFC 3986 §3.2.2)
            return None
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
        if not (port.isdigit() and len(port) <= 5):
            return None
        text = host
    try:
        return _unmap(ip_address(text))
    except ValueError:
        return None


class _IntervalSet:
    """Sorted disjoint ``[start, end]`` integer intervals for one address family."""

    __slots__ = ("_ends", "_starts")

    def __init__(self, networks: Iterable[Network]) -> None:
        spans = sorted((int(n.network_address), int(n.broadcast_address)) for n in networks)
        starts: list[int] = []
        ends: list[int] = []
        for start, end in spans:
            # Merge overlapping *and* adjacent ranges (10.0.0.0/9 + 10.128.0.0/9).
            if ends and start <= ends[-1] + 1:
                if end > ends[-1]:
                    ends[-1] = end
            else:
                starts.append(start)
                ends.append(end)
        self._starts = starts
        self._ends = ends

    def __contains__(self, value: int) -> bool:
        i = bisect_right(self._starts, value) - 1
        return i >= 0 and value <= self._ends[i]

    def __len__(self) -> int:
        return len(self._starts)


class _AddressSet:
    """IPv4 and IPv6 interval sets with mapped addresses folded into IPv4."""

    __slots__ = ("_v4", "_v6", "entries")

    def __init__(self, items: Iterable[str]) -> None:
        networks = [parse_network(item) for item in items]
        # Keep what the user wrote, normalised, for display; dedupe but keep order.
        self.entries: tuple[str, ...] = tuple(dict.fromkeys(str(n) for n in networks))
        folded = [_unmap_network(n) for n in networks]
        self._v4 = _IntervalSet(n for n in folded if isinstance(n, IPv4Network))
        self._v6 = _IntervalSet(n for n in folded if isinstance(n, IPv6Network))

    def __contains__(self, addr: Address) -> bool:
        addr = _unmap(addr)
        table = self._v4 if isinstance(addr, IPv4Address) else self._v6
        return int(addr) in table

    def __bool__(self) -> bool:
        return bool(self.entries)


class _NetworkList:
    """A compiled list of addresses and ranges; subclasses say what an empty list means."""

    __slots__ = ("_set",)

    def __init__(self, entries: Iterable[str] = ()) -> None:
        self._set = _AddressSet(entries)

    @property
    def entries(self) -> tuple[str, ...]:
        """The normalised entries (``10.0.0.0/8``), in the order given, for display."""
        return self._set.entries

    def __bool__(self) -> bool:
        return bool(self._set)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self.entries)!r})"

    def _matches(self, ip: str | Address | None) -> bool:
        # An unknown or unparsable address matches nothing.
        addr = parse_address(ip)
        return addr is not None and addr in self._set


class IpAllowlist(_NetworkList):
    """A key's IP allowlist. An empty list allows every client (CONTRACT §4)."""

    __slots__ = ()

    def allows(self, ip: str | Address | None) -> bool:
        """Whether ``ip`` may use the key; an unknown or unparsable address fails closed."""
        return not self._set or self._matches(ip)

    def check(self, ip: str | Address | None) -> None:
        """Raise ``IpNotAllowed`` unless :meth:`allows`."""
        if not self.allows(ip):
            raise IpNotAllowed()


class TrustedProxies(_NetworkList):
    """Proxies whose ``X-Forwarded-For`` is believed. Empty (the default) trusts no one."""

    __slots__ = ()

    def trusts(self, ip: str | Address | None) -> bool:
        return bool(self._set) and self._matches(ip)


def _entries_right_to_left(header: str) -> Iterator[str]:
    # Walk the list from the end without splitting a possibly long header up front.
    end = len(header)
    while end > 0:
        comma = header.rfind(",", 0, end)
        item = header[comma + 1 : end].strip(" \t")
        if item:  # RFC 9110 §5.6.1: empty list elements are ignored
            yield item
        end = comma if comma >= 0 else 0


def resolve_client_ip(
    peer: str | None, forwarded_for: str | None, trusted: TrustedProxies
) -> Address | None:
    """The address a request comes from, for allowlists, rate limits and logs.

    - The socket ``peer`` is the client, unless it is a trusted proxy.
    - Behind a trusted proxy, walk ``X-Forwarded-For`` (several headers joined with
      ``,``) from the right: each proxy appends the address it saw, so the first entry
      that is not itself a trusted proxy is the client. Entries to its left were written
      by the client and are never read, so a spoofed header changes nothing.
    - If every entry is a trusted proxy, the left-most one is the client (an internal
      caller). With no (or an empty) header, the trusted peer itself is the client.
    - A malformed entry reached during the walk (``unknown``, ``unix:``, garbage) gives
      ``None``: the real client is unknown, and we neither read further left (client-
      controlled) nor substitute the trusted hop's address (that would make the caller
      look like our own infrastructure, which allowlists often include). ``None`` fails
      closed against a non-empty allowlist.
    - ``None`` also when the peer is unknown or unparsable (e.g. a Unix socket).
    """
    client = parse_address(peer)
    if client is None or not trusted.trusts(client) or not forwarded_for:
        return client
    for item in _entries_right_to_left(forwarded_for):
        addr = parse_address(item)
        if addr is None:
            return None
        client = addr
        if not trusted.trusts(addr):
            return addr
    return client
