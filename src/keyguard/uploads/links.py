"""Short-lived signed download links for uploaded photos (no credentials needed).

``/v1/photos/ID/download?expires=UNIX&signature=HEX`` where the signature is
HMAC-SHA256 over ``ID`` and ``expires`` under a server key derived from the master key.
Anyone holding the link can fetch the file until it expires, like an S3 presigned URL.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode

from keyguard.uploads.errors import DownloadLinkExpired, DownloadLinkInvalid

LINK_TTL_SECONDS = 3600
_MAX_EXPIRES_DIGITS = 12


def _mac(key: bytes, photo_id: str, expires: int) -> str:
    return hmac.new(key, f"{photo_id}\n{expires}".encode(), hashlib.sha256).hexdigest()


def sign_download_link(
    key: bytes, base_url: str, photo_id: str, *, now: float, ttl: int = LINK_TTL_SECONDS
) -> tuple[str, int]:
    """``(url, expires)`` for ``base_url`` (``https://host/v1/photos/ID/download``)."""
    expires = int(now) + ttl
    query = urlencode({"expires": expires, "signature": _mac(key, photo_id, expires)})
    return f"{base_url}?{query}", expires


def verify_download_link(
    key: bytes, photo_id: str, expires: str | None, signature: str | None, *, now: float
) -> None:
    """Raise :class:`DownloadLinkInvalid` or :class:`DownloadLinkExpired`; None if valid."""
    if (
        not expires
        or not signature
        or not expires.isascii()
        or not expires.isdigit()
        or len(expires) > _MAX_EXPIRES_DIGITS
    ):
        raise DownloadLinkInvalid()
    if not hmac.compare_digest(_mac(key, photo_id, int(expires)), signature):
        raise DownloadLinkInvalid()
    if int(expires) < now:
        raise DownloadLinkExpired()


__all__ = ["LINK_TTL_SECONDS", "sign_download_link", "verify_download_link"]
