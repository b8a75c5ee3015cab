"""Signed requests (CONTRACT §4): the secret never travels, only an HMAC over the request.

``X-{P}-Signature: sha256=hex(HMAC-SHA256(key=UTF-8(signing_secret),
msg=METHOD + PATH_WITH_QUERY + BODY + TIMESTAMP))`` with ``X-{P}-Timestamp`` in Unix
seconds, accepted within ±300 s. Refusing a signature seen twice is the caller's job
(it needs a shared replay cache); everything else is here.

Example (server side)::

    ts = verify_signed_request(secret, "POST", "/v1/sessions?x=1", body, ts_header,
                               sig_header, now=clock.now())
    replay_cache.add_or_raise(sig_header, ttl=2 * 300)

The message is a plain concatenation, as the contract fixes: field boundaries are not
bound, so bytes could in theory slide between path, body and timestamp. Such a shifted
request targets another path or another timestamp (out of window), and the replay
cache refuses the same signature twice anyway.
"""

from __future__ import annotations

import base64
import hmac
import re
import secrets

from keyguard.errors import SignatureExpired, SignatureInvalid

__all__ = [
    "SIGNATURE_PREFIX",
    "TIMESTAMP_WINDOW",
    "check_timestamp",
    "compute_signature",
    "new_signing_secret",
    "verify_signature",
    "verify_signed_request",
]

SIGNATURE_PREFIX = "sha256="
TIMESTAMP_WINDOW = 300
SECRET_PREFIX = "kgsig_"  # noqa: S105 - a public marker, not a secret

_SIGNATURE = re.compile(r"sha256=[0-9a-f]{64}")
# Canonical decimal only (CONTRACT §4): "0" or no leading zero. ``int()`` reads
# "01700000000" as 1700000000, so leading zeros would let one signature cover two
# different messages (body "amount=100" + "1700000000" = "amount=10" + "01700000000").
_TIMESTAMP = re.compile(r"0|[1-9][0-9]{0,10}")
# Unix seconds reach 10**11 in the year 5138; anything that long is milliseconds.
_MILLIS_THRESHOLD = 10**11


def new_signing_secret() -> str:
    """``kgsig_`` + unpadded base64url of 32 random bytes (256 bits)."""
    raw = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=")
    return SECRET_PREFIX + raw.decode("ascii")


def compute_signature(
    signing_secret: str, method: str, path_with_query: str, body: bytes, timestamp: str
) -> str:
    """``sha256=<lower-case hex>`` over ``METHOD + PATH_WITH_QUERY + BODY + TIMESTAMP``.

    ``path_with_query`` is the request target exactly as sent (still percent-encoded);
    ``method`` is upper-cased. Non-ASCII method or timestamp raises ``ValueError``.
    """
    message = b"".join(
        (
            method.upper().encode("ascii"),
            path_with_query.encode("utf-8"),
            bytes(body),
            timestamp.encode("ascii"),
        )
    )
    # hmac.digest: OpenSSL's one-shot HMAC, a microsecond less than hmac.new().hexdigest().
    digest = hmac.digest(signing_secret.encode("utf-8"), message, "sha256").hex()
    return SIGNATURE_PREFIX + digest


def check_timestamp(timestamp: str | None, now: float, window: int = TIMESTAMP_WINDOW) -> int:
    """Parse ``X-{P}-Timestamp`` and return it, or raise.

    ``SignatureInvalid`` when missing or not canonical decimal seconds (no sign,
    fraction, spaces, leading zero, or millisecond values); ``SignatureExpired`` when
    more than ``window`` seconds away from ``now`` in either direction (a clock ahead is
    as bad as a replay).
    """
    if timestamp is None or not _TIMESTAMP.fullmatch(timestamp):
        if timestamp is not None and timestamp.isascii() and timestamp.isdigit():
            if timestamp.startswith("0"):
                raise SignatureInvalid("The timestamp must not have leading zeros")
            raise SignatureInvalid("The timestamp must be Unix time in seconds")
        raise SignatureInvalid("The timestamp header is missing or not decimal seconds")
    value = int(timestamp)
    if value >= _MILLIS_THRESHOLD:
        raise SignatureInvalid("The timestamp must be Unix time in seconds")
    if abs(now - value) > window:
        raise SignatureExpired()
    return value


def verify_signature(
    signing_secret: str,
    method: str,
    path_with_query: str,
    body: bytes,
    timestamp: str,
    signature_header: str | None,
) -> None:
    """Raise ``SignatureInvalid`` unless ``signature_header`` signs this request.

    Only the exact ``sha256=`` + 64 lower-case hex form is accepted. Does not look at
    the clock: call :func:`check_timestamp` first, or use :func:`verify_signed_request`.
    """
    if signature_header is None or not _SIGNATURE.fullmatch(signature_header):
        raise SignatureInvalid()
    try:
        expected = compute_signature(signing_secret, method, path_with_query, body, timestamp)
    except ValueError:  # non-ASCII method or timestamp: cannot have been signed by us
        raise SignatureInvalid() from None
    if not hmac.compare_digest(expected, signature_header):
        raise SignatureInvalid()


def verify_signed_request(
    signing_secret: str,
    method: str,
    path_with_query: str,
    body: bytes,
    timestamp: str | None,
    signature_header: str | None,
    *,
    now: float,
    window: int = TIMESTAMP_WINDOW,
) -> int:
    """Timestamp window, then signature; returns the timestamp. Replays are the caller's."""
    ts = check_timestamp(timestamp, now, window)
    if timestamp is None:  # unreachable: check_timestamp refused it; narrows the type
        raise SignatureInvalid()
    verify_signature(signing_secret, method, path_with_query, body, timestamp, signature_header)
    return ts
