"""Which request and response headers cross the gateway, and which it adds."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from keyguard.gateway.security import Caller
from keyguard.wire import KEY_HEADERS, PROXY_CERT_COMPANION_HEADERS, PROXY_CERT_HEADERS, prefixed

# RFC 9110 §7.6.1: connection-specific fields, never forwarded by a proxy.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# Rewritten by the gateway itself (client copies are never passed on).
FORWARDING_HEADERS = frozenset(
    {
        "host",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "forwarded",
        "expect",
        "x-request-id",  # replaced by the edge's own id
    }
)
# Forwarded client certificates and their companions: a client's copies are forged.
CERTIFICATE_HEADERS = frozenset((*PROXY_CERT_HEADERS, *PROXY_CERT_COMPANION_HEADERS))
# Where other proxies put the client's address or the original URL: an upstream may read
# any of them, and only the gateway says who the client is (X-Forwarded-For).
CLIENT_ADDRESS_HEADERS = frozenset(
    {
        "x-real-ip",
        "true-client-ip",
        "cf-connecting-ip",
        "fastly-client-ip",
        "x-client-ip",
        "x-cluster-client-ip",
        "x-forwarded",
        "forwarded-for",
        "x-forwarded-server",
        "x-forwarded-port",
        "x-forwarded-prefix",
        "x-original-forwarded-for",
        "x-original-url",
        "x-rewrite-url",
        "x-original-host",
    }
)


def canonical_name(name: bytes) -> bytes:
    """A header name as servers may fold it: lower case, ``_`` as ``-`` (some upstream
    servers, CGI-style ones among them, read ``X-Key_Id`` as ``X-Key-Id``)."""
    return name.lower().replace(b"_", b"-")


def connection_tokens(values: Iterable[bytes]) -> frozenset[bytes]:
    """Header names listed in ``Connection`` (also hop-by-hop, RFC 9110 §7.6.1)."""
    return frozenset(
        token.strip().lower() for value in values for token in value.split(b",") if token.strip()
    )


def is_keyguard_authorization(value: bytes) -> bool:
    """``Bearer`` / ``ApiKey`` carry our key; other schemes (Basic…) belong to the upstream."""
    scheme = value.strip().split(b" ", 1)[0].lower()
    return scheme in (b"bearer", b"apikey")


def stripped_request_headers(prefix: str) -> frozenset[bytes]:
    """Never forwarded: hop-by-hop, Keyguard credentials (the upstream trusts the identity
    headers instead), forwarding and certificate headers, and every ``X-{P}-…`` name."""
    names = HOP_BY_HOP | KEY_HEADERS | FORWARDING_HEADERS | CERTIFICATE_HEADERS
    names |= CLIENT_ADDRESS_HEADERS
    return frozenset(name.encode("latin-1") for name in names | prefixed(prefix).all)


def own_prefix(prefix: str) -> bytes:
    """``x-{p}-``: every header under Keyguard's prefix is Keyguard's to set, never a
    client's to pass on."""
    return f"x-{prefix.lower()}-".encode("latin-1")


@dataclass(frozen=True, slots=True)
class IdentityNames:
    """The ``X-{P}-…`` headers that tell the upstream who called (CONTRACT §5, §8)."""

    key_id: bytes
    project_id: bytes
    scopes: bytes
    subject: bytes
    client_id: bytes

    @classmethod
    def of(cls, prefix: str) -> IdentityNames:
        names = prefixed(prefix)
        fields = (names.key_id, names.project_id, names.scopes, names.subject, names.client_id)
        return cls(*(name.encode("latin-1") for name in fields))

    def headers(self, caller: Caller) -> list[tuple[bytes, bytes]]:
        """The caller's identity: the key's id, the token's subject (none for client
        credentials) and app, their project, and the scopes: the token's when there is one
        (what the person granted), else the key's. Nobody (an open operation): nothing."""
        key, token = caller.key, caller.token
        told = token or key  # both have one project (checked); scopes: the token's first
        if told is None:
            return []
        out = [] if key is None else [(self.key_id, key.key_id.encode())]
        out.append((self.project_id, (told.project_id or "").encode()))
        out.append((self.scopes, " ".join(sorted(told.scopes)).encode()))
        if token is not None:
            if token.subject is not None:
                out.append((self.subject, token.subject.encode()))
            out.append((self.client_id, token.client_id.encode()))
        return out
