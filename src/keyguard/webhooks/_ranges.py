"""Address ranges a webhook must never reach, with the reason reported for each.

Explicit tables rather than ``ipaddress.is_private``/``is_global`` alone: those flags
changed between Python releases, and the reasons must be stable codes.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Cloud instance-metadata endpoints. Forbidden even inside allow_private: allowing a
# dev subnet such as 169.254.0.0/16 must not hand out instance credentials.
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean
        "169.254.170.2",  # AWS ECS task metadata
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure WireServer (public range, host-internal service)
        "fd00:ec2::254",  # AWS IMDS over IPv6
    )
)

# Checked in order; the first match names the reason.
_V4: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/32", "unspecified"),  # RFC 1122 §3.2.1.3
    ("0.0.0.0/8", "reserved"),  # RFC 1122 §3.2.1.3 "this network"
    ("127.0.0.0/8", "loopback"),  # RFC 1122 §3.2.1.3
    ("10.0.0.0/8", "private"),  # RFC 1918 §3
    ("172.16.0.0/12", "private"),  # RFC 1918 §3
    ("192.168.0.0/16", "private"),  # RFC 1918 §3
    ("100.64.0.0/10", "cgnat"),  # RFC 6598
    ("169.254.0.0/16", "link_local"),  # RFC 3927
    ("192.0.0.0/24", "reserved"),  # RFC 6890 IETF protocol assignments
    ("192.0.2.0/24", "documentation"),  # RFC 5737
    ("198.51.100.0/24", "documentation"),  # RFC 5737
    ("203.0.113.0/24", "documentation"),  # RFC 5737
    ("198.18.0.0/15", "benchmarking"),  # RFC 2544
    ("192.88.99.0/24", "reserved"),  # RFC 7526 deprecated 6to4 relay anycast
    ("224.0.0.0/4", "multicast"),  # RFC 5771
    ("255.255.255.255/32", "broadcast"),  # RFC 919
    ("240.0.0.0/4", "reserved"),  # RFC 1112 §4
)
_V6: tuple[tuple[str, str], ...] = (
    ("::/128", "unspecified"),  # RFC 4291 §2.5.2
    ("::1/128", "loopback"),  # RFC 4291 §2.5.3
    ("64:ff9b:1::/48", "private"),  # RFC 8215 local-use NAT64
    ("100::/64", "reserved"),  # RFC 6666 discard-only
    ("2001:2::/48", "benchmarking"),  # RFC 5180
    ("2001:db8::/32", "documentation"),  # RFC 3849
    ("3fff::/20", "documentation"),  # RFC 9637
    ("2001:10::/28", "reserved"),  # RFC 4843 deprecated ORCHID
    ("2001:20::/28", "reserved"),  # RFC 7343 ORCHIDv2
    ("fc00::/7", "private"),  # RFC 4193 unique local
    ("fe80::/10", "link_local"),  # RFC 4291 §2.5.6
    ("fec0::/10", "private"),  # RFC 3879 deprecated site-local
    ("ff00::/8", "multicast"),  # RFC 4291 §2.7
    ("::/8", "reserved"),  # RFC 4291 §2.4 (includes deprecated IPv4-compatible ::/96)
)
_V4_TABLE = tuple((ipaddress.IPv4Network(n), r) for n, r in _V4)
_V6_TABLE = tuple((ipaddress.IPv6Network(n), r) for n, r in _V6)

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052 §2.1
_COMPAT = ipaddress.IPv6Network("::/96")  # RFC 4291 §2.5.5.1
_THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")  # RFC 1122 §3.2.1.3
_RELAYED = frozenset({"6to4", "teredo", "nat64"})  # forms that reach IPv4 through a relay


def classify(ip: IPAddress, allow_private: Sequence[Network] = ()) -> str | None:
    """The reason ``ip`` is forbidden, or None when a webhook may connect to it."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id is not None:
        ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
    if ip in METADATA_ADDRESSES:
        return "metadata"
    if any(ip.version == net.version and ip in net for net in allow_private):
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        # Addresses that embed an IPv4 destination (mapped, NAT64, 6to4, Teredo) are
        # judged by that destination alone, so the answer does not depend on Python's
        # version-specific is_global for these transition ranges.
        embedded = _embedded_ipv4(ip)
        if embedded:
            reasons = (_embedded_reason(v4, form, allow_private) for v4, form in embedded)
            return next((r for r in reasons if r is not None), None)
    table = _V4_TABLE if isinstance(ip, ipaddress.IPv4Address) else _V6_TABLE
    for network, reason in table:
        if ip in network:
            return reason
    # Safety net for ranges added to the IANA special-purpose registry later.
    if not ip.is_global:
        return "reserved"
    return None


def _embedded_reason(
    v4: ipaddress.IPv4Address, form: str, allow_private: Sequence[Network]
) -> str | None:
    reason = classify(v4, allow_private)
    # No relay-routed address really carries 0.0.0.0/8 ("this network", e.g. the Teredo
    # server of 2001::1): name the IPv6 range, not a meaningless IPv4 one.
    if reason is not None and form in _RELAYED and v4 in _THIS_NETWORK:
        return form
    return reason


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[tuple[ipaddress.IPv4Address, str]]:
    """The IPv4 addresses ``ip`` routes to, each with the name of its IPv6 form."""
    found: list[tuple[ipaddress.IPv4Address, str]] = []
    if ip.ipv4_mapped is not None:  # RFC 4291 §2.5.5.2 ::ffff:a.b.c.d
        found.append((ip.ipv4_mapped, "ipv4_mapped"))
    if ip.sixtofour is not None:  # RFC 3056 2002:AABB:CCDD::/48
        found.append((ip.sixtofour, "6to4"))
    if ip.teredo is not None:  # RFC 4380 §4: (server, client)
        found.extend((v4, "teredo") for v4 in ip.teredo)
    if ip in _NAT64:
        found.append((ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "nat64"))
    elif ip in _COMPAT and int(ip) > 1:
        found.append((ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "ipv4_compatible"))
    return found
