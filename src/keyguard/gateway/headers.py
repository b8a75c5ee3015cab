"""Which request and response headers cross the gateway, and which it adds."""

from __future__ import annotations

from collections.abc import Iterable

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
# Keyguard credentials stay at the gateway: the upstream trusts the identity headers.
CREDENTIAL_HEADERS = frozenset({"api-key", "x-api-key", "x-api-secret"})
# Rewritten by the gateway itself (client copies are never passed on).
FORWARDING_HEADERS = frozenset(
    {"host", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded", "expect"}
)
CERTIFICATE_HEADERS = frozenset(
    {
        "client-cert",
        "client-cert-chain",
        "x-forwarded-client-cert",
        "x-ssl-client-cert",
        "x-ssl-client-verify",  # nginx's verdict on that certificate: forged if sent to us
    }
)


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
    p = prefix.lower()
    own = {
        f"x-{p}-key-id",
        f"x-{p}-project-id",
        f"x-{p}-scopes",
        f"x-{p}-totp",
        f"x-{p}-timestamp",
        f"x-{p}-signature",
    }
    names = HOP_BY_HOP | CREDENTIAL_HEADERS | FORWARDING_HEADERS | CERTIFICATE_HEADERS | own
    return frozenset(name.encode("latin-1") for name in names)
