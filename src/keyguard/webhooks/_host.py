"""Strict parsing of the host part of a webhook URL.

Different parsers read ``0x7f.1``, ``2130706433`` or ``127.1`` differently (WHATWG and
``inet_aton`` say 127.0.0.1, a DNS resolver may say "no such name"). Such parser
differentials are a classic SSRF bypass, so anything that *could* be read as a numeric
IPv4 address must be the one canonical dotted quad; everything else must be a plain
DNS name.
"""

from __future__ import annotations

import ipaddress
import re

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# RFC 1123 §2.1 labels; "_" tolerated because real service names use it.
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
# WHATWG URL "ends in a number checker": such a host goes to the IPv4 parser.
_NUMERIC_LABEL = re.compile(r"^(?:[0-9]+|0x[0-9a-f]*)$")
_CANONICAL_OCTET = re.compile(r"^(?:0|[1-9][0-9]{0,2})$")


class HostError(ValueError):
    """The host is not a canonical IP literal nor a valid DNS name."""


def parse_host(raw_host: str) -> tuple[str, IPAddress | None]:
    """Return ``(normalized host, ip or None)`` for an IDNA-encoded (ASCII) host.

    IPv6 literals arrive without brackets. A single trailing dot is dropped so the
    Host header, TLS SNI and certificate checks all see the same name.
    """
    host = raw_host.lower()
    if not host:
        raise HostError("the URL has no host")
    if ":" in host:
        return _parse_ipv6(host)
    if host.endswith("."):
        host = host[:-1]
    if len(host) > 253:
        raise HostError("the host name is too long")
    labels = host.split(".")
    if _NUMERIC_LABEL.match(labels[-1]):
        return host, _parse_canonical_ipv4(labels)
    if not all(_LABEL.match(label) for label in labels):
        raise HostError("the host is not a valid DNS name")
    return host, None


def _parse_ipv6(host: str) -> tuple[str, IPAddress]:
    # A zone id (fe80::1%eth0) names a local interface: never a valid webhook target.
    if "%" in host:
        raise HostError("IPv6 zone identifiers are not allowed")
    try:
        ip = ipaddress.IPv6Address(host)
    except ValueError as exc:
        raise HostError("the host is not a valid IPv6 address") from exc
    return str(ip), ip


def _parse_canonical_ipv4(labels: list[str]) -> IPAddress:
    if len(labels) != 4 or not all(_CANONICAL_OCTET.match(label) for label in labels):
        raise HostError("numeric hosts must be a dotted-quad IPv4 address (a.b.c.d)")
    try:
        return ipaddress.IPv4Address(".".join(labels))
    except ValueError as exc:  # an octet above 255
        raise HostError("the host is not a valid IPv4 address") from exc
