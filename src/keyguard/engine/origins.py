"""Allowed domains: which browser origins may use a key (or an OAuth app).

Pattern syntax — ``[scheme://][*.]host[:port]``, one per entry:

``example.com``
    Exactly that host, over ``http`` on port 80 or ``https`` on port 443.
``*.example.com``
    Any subdomain at any depth (``a.example.com``, ``a.b.example.com``), never
    ``example.com`` itself (list it on its own) and never ``evilexample.com`` or
    ``example.com.evil.com``.
``https://app.example.com``
    Only that scheme (on its default port).
``example.com:8443``
    Only that port, over ``http`` or ``https``. ``localhost:*`` allows any port
    (handy in development); ``http://localhost:*`` also pins the scheme.

Hosts compare case-insensitively, without a trailing dot, IDNs in punycode (UTS #46, as
browsers serialise them); IPv4 and bracketed IPv6 literals match exactly. A pattern
without a scheme never matches other schemes (``chrome-extension://…``); list those with
their scheme. A trailing ``/`` is tolerated; paths, queries, user-info and lone ``*`` are
refused (use an empty list to allow every origin).

Matching reads ``Origin``, else the scheme, host and port of ``Referer``. When the list
is non-empty, a request with neither, with ``Origin: null``, with an unparsable value or
with user-info in the ``Referer`` is refused. An ``Origin`` that is present always
decides alone: a permissive ``Referer`` never rescues a refused ``Origin``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from ipaddress import IPv4Address, IPv6Address

import idna

from keyguard.errors import OriginNotAllowed

__all__ = ["DomainAllowlist", "normalize_domain_pattern"]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_WEB_SCHEMES = frozenset(_DEFAULT_PORTS)
_ANY_PORT = -1

_SCHEME = re.compile(r"[a-z][a-z0-9+.\-]*")  # RFC 3986 §3.1
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_\-]{0,61}[a-z0-9_])?")
_PORT = re.compile(r"[0-9]{1,5}")


@dataclass(frozen=True, slots=True)
class _Origin:
    scheme: str
    host: str
    port: int  # effective port; the scheme's default when absent, 0 if it has none


@dataclass(frozen=True, slots=True)
class _Rule:
    schemes: frozenset[str]
    port: int | None  # None: the scheme's default port; _ANY_PORT: any

    def admits(self, origin: _Origin) -> bool:
        if origin.scheme not in self.schemes:
            return False
        if self.port == _ANY_PORT:
            return True
        if self.port is None:
            return origin.port == _DEFAULT_PORTS.get(origin.scheme, 0)
        return origin.port == self.port


def _is_numeric_label(label: str) -> bool:
    # WHATWG URL "ends in a number": decimal, or 0x-prefixed hex (possibly empty).
    if label.startswith("0x"):
        return all(c in "0123456789abcdef" for c in label[2:])
    return label.isdigit()


def _normalize_host(host: str) -> str:
    """Lower-case ASCII host (punycode), or ``ValueError``."""
    if host.startswith("[") and host.endswith("]"):
        try:
            if "%" in host:  # ipaddress would keep a zone id; origins never carry one
                raise ValueError
            v6 = IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError("invalid IPv6 literal") from None
        return f"[{v6.compressed}]"
    if host.endswith("."):  # the root label: "example.com." is "example.com"
        host = host[:-1]
    if not host:
        raise ValueError("empty host")
    if not host.isascii():
        try:
            # UTS #46 mapping + IDNA 2008, like browsers do when serialising origins.
            host = idna.encode(host, uts46=True).decode("ascii")
        except idna.IDNAError:
            raise ValueError("invalid internationalised domain name") from None
    host = host.lower()
    labels = host.split(".")
    if _is_numeric_label(labels[-1]):
        # WHATWG URL: a numeric last label makes the host an IPv4 address.
        try:
            return str(IPv4Address(host))
        except ValueError:
            raise ValueError("invalid IPv4 address") from None
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError("invalid host name")
    return host


def _split_host_port(authority: str) -> tuple[str, str | None]:
    if authority.startswith("["):
        close = authority.find("]")
        if close == -1:
            raise ValueError("unterminated IPv6 literal")
        host, rest = authority[: close + 1], authority[close + 1 :]
        if not rest:
            return host, None
        if not rest.startswith(":"):
            raise ValueError("junk after IPv6 literal")
        return host, rest[1:]
    host, colon, port = authority.rpartition(":")
    return (host, port) if colon else (authority, None)


def _parse_pattern(text: str) -> tuple[frozenset[str], bool, str, int | None, str]:
    """(schemes, wildcard, host, port rule, normalised text)."""
    if not isinstance(text, str):
        raise ValueError("domain pattern must be a string")
    raw = text.strip()
    if not raw or not raw.isprintable() or any(c.isspace() for c in raw):
        raise ValueError("domain pattern must be a non-empty host name without spaces")
    scheme: str | None = None
    rest = raw
    if "://" in raw:
        scheme, _, rest = raw.partition("://")
        scheme = scheme.lower()
        if not _SCHEME.fullmatch(scheme):
            raise ValueError("invalid scheme")
    if rest.endswith("/"):
        rest = rest[:-1]  # people paste "https://example.com/"
    if any(c in rest for c in "/?#@\\"):
        raise ValueError("a domain pattern has no path, query, fragment or user-info")
    host, port_text = _split_host_port(rest)
    wildcard = host.startswith("*.")
    if wildcard:
        host = host[2:]
    if "*" in host:
        raise ValueError("'*' is only allowed as the whole left-most label: '*.example.com'")
    host = _normalize_host(host)
    if wildcard and (host.startswith("[") or host.replace(".", "").isdigit()):
        raise ValueError("a wildcard cannot apply to an IP address")
    if wildcard and "." not in host and host != "localhost":
        # No public-suffix list here, but "*.com" is always a mistake.
        raise ValueError("a wildcard needs at least two labels after it: '*.example.com'")

    port: int | None = None
    if port_text == "*":
        port = _ANY_PORT
    elif port_text is not None:
        if not _PORT.fullmatch(port_text) or not 0 < int(port_text) < 65536:
            raise ValueError("invalid port")
        port = int(port_text)
        if scheme is not None and _DEFAULT_PORTS.get(scheme) == port:
            port = None  # "https://x:443" is "https://x"

    normalised = ("*." if wildcard else "") + host
    if port == _ANY_PORT:
        normalised += ":*"
    elif port is not None:
        normalised += f":{port}"
    if scheme is not None:
        normalised = f"{scheme}://{normalised}"
    schemes = frozenset({scheme}) if scheme is not None else _WEB_SCHEMES
    return schemes, wildcard, host, port, normalised


def _compile(text: str) -> tuple[frozenset[str], bool, str, int | None, str]:
    try:
        return _parse_pattern(text)
    except ValueError as exc:
        shown = repr(text[:80]) if isinstance(text, str) else type(text).__name__
        raise ValueError(f"invalid domain pattern {shown}: {exc}") from None


def normalize_domain_pattern(text: str) -> str:
    """Validate a pattern and return its canonical form (``ValueError`` if invalid).

    >>> normalize_domain_pattern("*.Bücher.DE.")
    '*.xn--bcher-kva.de'
    """
    return _compile(text)[4]


# Origins repeat from request to request (a browser app sends the same one every time);
# parsing one costs ~3 us. Bounded, so arbitrary values cannot grow it.
@lru_cache(maxsize=8192)
def _parse_origin(text: str, *, url: bool) -> _Origin | None:
    """``scheme://host[:port]`` from an ``Origin`` (or, with ``url``, a ``Referer``)."""
    if not text.isascii() or not text.isprintable() or " " in text:
        return None
    scheme, sep, rest = text.partition("://")
    scheme = scheme.lower()
    if not sep or not _SCHEME.fullmatch(scheme):
        return None
    if url:
        for i, c in enumerate(rest):
            if c in "/?#":
                rest = rest[:i]
                break
    # Browsers strip user-info from Referer (Referrer Policy §8.4) and never put it in
    # Origin (RFC 6454 §7.1), so "https://example.com@evil.com/" is a forgery: refuse.
    if not rest or any(c in rest for c in "@\\/?#"):
        return None
    try:
        host, port_text = _split_host_port(rest)
        host = _normalize_host(host)
    except ValueError:
        return None
    if port_text is None:
        port = _DEFAULT_PORTS.get(scheme, 0)
    elif _PORT.fullmatch(port_text) and 0 < int(port_text) < 65536:
        port = int(port_text)
    else:
        return None
    return _Origin(scheme, host, port)


class DomainAllowlist:
    """Compiled allowed-domain patterns: a dict of exact hosts and one of suffixes.

    A look-up costs one dict probe per label of the request's host, whatever the number
    of patterns; and the answers for the last few ``Origin`` values are remembered (a
    browser app sends the same one on every request; the list never changes).
    """

    __slots__ = ("_decided", "_exact", "_suffix", "entries")

    _DECIDED_KEPT = 16  # per list: a few origins per key, bounded whatever is sent

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        exact: dict[str, list[_Rule]] = {}
        suffix: dict[str, list[_Rule]] = {}
        entries: dict[str, None] = {}
        for pattern in patterns:
            schemes, wildcard, host, port, normalised = _compile(pattern)
            entries[normalised] = None
            (suffix if wildcard else exact).setdefault(host, []).append(_Rule(schemes, port))
        self.entries: tuple[str, ...] = tuple(entries)
        self._exact = {h: tuple(r) for h, r in exact.items()}
        self._suffix = {h: tuple(r) for h, r in suffix.items()}
        self._decided: dict[str, bool] = {}

    def __bool__(self) -> bool:
        return bool(self.entries)

    def __repr__(self) -> str:
        return f"DomainAllowlist({list(self.entries)!r})"

    def _admits(self, origin: _Origin) -> bool:
        if any(rule.admits(origin) for rule in self._exact.get(origin.host, ())):
            return True
        if origin.host.startswith("["):
            return False
        # "a.b.example.com" -> try suffixes "b.example.com", "example.com", "com":
        # a wildcard entry for S matches exactly the hosts ending in "." + S.
        host = origin.host
        dot = host.find(".")
        while dot != -1:
            parent = host[dot + 1 :]
            if any(rule.admits(origin) for rule in self._suffix.get(parent, ())):
                return True
            dot = host.find(".", dot + 1)
        return False

    def allows_origin(self, origin: str | None, referer: str | None) -> bool:
        """Whether a request with these ``Origin`` / ``Referer`` values may proceed."""
        if not self.entries:
            return True
        if origin is not None:
            decided = self._decided.get(origin)
            if decided is None:
                parsed = _parse_origin(origin.strip(), url=False)  # "null" fails to parse
                decided = parsed is not None and self._admits(parsed)
                if len(self._decided) >= self._DECIDED_KEPT:
                    self._decided.clear()
                self._decided[origin] = decided
            return decided
        if referer is not None:
            parsed = _parse_origin(referer.strip(), url=True)
        else:
            return False
        return parsed is not None and self._admits(parsed)

    def check(self, origin: str | None, referer: str | None) -> None:
        """Raise ``OriginNotAllowed`` unless :meth:`allows_origin`."""
        if not self.allows_origin(origin, referer):
            raise OriginNotAllowed()
