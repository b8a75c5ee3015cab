"""What Keyguard puts on the wire, written once: header names, problem+json, RateLimit-*.

Every door (middleware, verify API, gateway), the outer ASGI guards and the FastAPI
error handler take their names and bytes from here, so a header renamed or a problem
field added changes in one place.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keyguard.errors import KeyguardError

PROBLEM_JSON = "application/problem+json"
WWW_AUTHENTICATE = 'Bearer realm="keyguard"'

# The four ways to present a key (CONTRACT §4): these headers carry nothing else.
KEY_HEADERS = frozenset({"api-key", "x-api-key", "x-api-secret"})
# Every header a credential may arrive in (``Authorization`` may also carry an
# upstream's own scheme, e.g. Basic, which the gateway passes on).
CREDENTIAL_HEADERS = frozenset({"authorization", *KEY_HEADERS})
# The session cookie of a signed-in person (CONTRACT §9): ``__Host-`` binds it to our
# origin, Secure and path /, so no sibling host can set or shadow it.
SESSION_COOKIE = "__Host-keyguard-session"

# Client certificates forwarded by a TLS-terminating proxy (RFC 9440, Envoy, nginx), in
# the order ``KEYGUARD_CLIENT_CERT_HEADER`` may name them.
PROXY_CERT_HEADERS = ("client-cert", "x-forwarded-client-cert", "x-ssl-client-cert")
# Companions a proxy sends with them (the chain; nginx's verdict): forged if they reach
# an upstream from a client.
PROXY_CERT_COMPANION_HEADERS = ("client-cert-chain", "x-ssl-client-verify")


@dataclass(frozen=True, slots=True)
class PrefixedHeaders:
    """The ``X-{P}-…`` names of ``KEYGUARD_HEADER_PREFIX``, lower-cased.

    Request side: ``totp``, ``timestamp``, ``signature``; ``session_password`` on the
    upload page. Gateway to upstream: ``key_id``, ``project_id``, ``scopes``, and for an
    access token ``subject`` and ``client_id`` (the identity the upstream trusts).
    """

    totp: str
    timestamp: str
    signature: str
    key_id: str
    project_id: str
    scopes: str
    session_password: str
    subject: str
    client_id: str

    @property
    def all(self) -> frozenset[str]:
        """The names the gateway never forwards from a client."""
        return frozenset(
            (
                self.totp,
                self.timestamp,
                self.signature,
                self.key_id,
                self.project_id,
                self.scopes,
                self.subject,
                self.client_id,
            )
        )


@lru_cache(maxsize=8)
def prefixed(prefix: str) -> PrefixedHeaders:
    p = f"x-{prefix.lower()}-"
    return PrefixedHeaders(
        totp=p + "totp",
        timestamp=p + "timestamp",
        signature=p + "signature",
        key_id=p + "key-id",
        project_id=p + "project-id",
        scopes=p + "scopes",
        session_password=p + "session-password",
        subject=p + "subject",
        client_id=p + "client-id",
    )


# ---- RateLimit-* (draft-ietf-httpapi-ratelimit-headers) --------------------------------


def ratelimit_fields(limit: int, remaining: int, reset: int) -> dict[str, str]:
    """``RateLimit-Limit`` / ``-Remaining`` / ``-Reset`` as response header fields."""
    return {
        "RateLimit-Limit": str(limit),
        "RateLimit-Remaining": str(remaining),
        "RateLimit-Reset": str(reset),
    }


def ratelimit_header_items(
    limit: int, remaining: int, reset: int
) -> tuple[tuple[bytes, bytes], ...]:
    """The same fields as raw ASGI header pairs (lower-cased names)."""
    return tuple(
        (name.lower().encode(), value.encode())
        for name, value in ratelimit_fields(limit, remaining, reset).items()
    )


# ---- problem+json (RFC 9457) ------------------------------------------------------------


def problem_body(error: KeyguardError) -> bytes:
    return json.dumps(error.to_problem()).encode()


def problem_headers(error: KeyguardError) -> dict[str, str]:
    """The headers a problem response carries beside its body: the error's own
    (``Retry-After``, ``RateLimit-*``) and ``WWW-Authenticate`` on a 401 (RFC 9110 §15.5.2)."""
    headers = dict(error.headers)
    if error.status == 401:
        headers.setdefault("WWW-Authenticate", WWW_AUTHENTICATE)
    return headers


Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


async def send_problem(
    send: Send,
    error: KeyguardError,
    *,
    extra: tuple[tuple[bytes, bytes], ...] = (),
) -> None:
    """Answer ``error`` as problem+json from plain ASGI (the doors and the outer guards).

    ``extra``: raw headers to add, e.g. ``connection: close`` when the request body was
    not read, or ``cache-control: no-store``.
    """
    body = problem_body(error)
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    headers += [(k.lower().encode(), v.encode()) for k, v in problem_headers(error).items()]
    headers += extra
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
