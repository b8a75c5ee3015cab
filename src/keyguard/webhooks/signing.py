"""Webhook signatures: the seed's ``X-{P}-Signature`` and the Standard Webhooks headers.

Both are always sent (CONTRACT §7). The seed header is keyed with the UTF-8 bytes of the
whole ``whsec_…`` string, exactly as the seed's Node and Python verifiers do; Standard
Webhooks keys with the base64-decoded part after ``whsec_``.

    >>> headers = signature_headers([new_webhook_secret()], "msg_1", 1700000000, b"{}", "Keyguard")
    >>> sorted(headers)
    ['X-Keyguard-Signature', 'webhook-id', 'webhook-signature', 'webhook-timestamp']
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets as _secrets
from collections.abc import Sequence

SECRET_PREFIX = "whsec_"  # noqa: S105 - a public prefix, not a secret
_SECRET_BYTES = 32  # CONTRACT §3: base64 of >= 24 random bytes
_HEADER_TOKEN = re.compile(r"^[A-Za-z0-9-]+$")
# Standard Webhooks: the id is an opaque token; no whitespace or "." keeps the signed
# content "{id}.{timestamp}.{body}" unambiguous and the header value well-formed.
_MSG_ID = re.compile(r"^[A-Za-z0-9_:-]{1,256}$")


def new_webhook_secret() -> str:
    """A fresh ``whsec_`` secret, compatible with Standard Webhooks libraries."""
    return SECRET_PREFIX + base64.b64encode(_secrets.token_bytes(_SECRET_BYTES)).decode("ascii")


def seed_signature(secret: str, body: bytes) -> str:
    """``sha256=`` + hex HMAC-SHA256 of the raw body, keyed with the whole secret string."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return "sha256=" + digest


def standard_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,`` signature (Standard Webhooks spec, "Signature scheme")."""
    if not _MSG_ID.match(msg_id):
        raise ValueError("msg_id must be 1-256 characters of [A-Za-z0-9_:-]")
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_standard_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_headers(
    secrets: Sequence[str],
    msg_id: str,
    timestamp: int,
    body: bytes,
    header_prefix: str,
) -> dict[str, str]:
    """All signature headers for one delivery attempt.

    ``secrets`` are the active secrets, NEWEST FIRST (more than one only during a
    rotation overlap). ``webhook-signature`` carries one ``v1,`` signature per secret,
    space-separated, so receivers on either secret verify. ``X-{P}-Signature`` can hold
    a single value (the seed verifier compares the whole header), so it is signed with
    the newest secret only: a receiver that swaps to the new secret right after
    rotating works at once, instead of breaking until the overlap ends.
    """
    if not secrets:
        raise ValueError("at least one webhook secret is required")
    if not _HEADER_TOKEN.match(header_prefix):
        raise ValueError("header prefix must be ASCII letters, digits or '-'")
    return {
        f"X-{header_prefix}-Signature": seed_signature(secrets[0], body),
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            standard_signature(s, msg_id, timestamp, body) for s in secrets
        ),
    }


def _standard_key(secret: str) -> bytes:
    raw = secret.removeprefix(SECRET_PREFIX)
    try:
        # Standard Webhooks libraries accept unpadded secrets; so do we.
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except ValueError as exc:
        raise ValueError("the webhook secret is not valid base64 after 'whsec_'") from exc
    if not key:
        raise ValueError("the webhook secret is empty")
    return key


__all__ = [
    "SECRET_PREFIX",
    "new_webhook_secret",
    "seed_signature",
    "signature_headers",
    "standard_signature",
]
