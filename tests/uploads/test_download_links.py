"""Signed download links: valid until they expire, bound to one photo."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from keyguard.uploads.errors import DownloadLinkExpired, DownloadLinkInvalid
from keyguard.uploads.links import sign_download_link, verify_download_link

KEY = b"p" * 32
NOW = 1_800_000_000.0


def _parts(url: str) -> tuple[str, str]:
    query = parse_qs(urlsplit(url).query)
    return query["expires"][0], query["signature"][0]


def test_a_fresh_link_verifies_until_it_expires() -> None:
    url, expires = sign_download_link(KEY, "https://h/v1/photos/pho_1/download", "pho_1", now=NOW)
    assert url.startswith("https://h/v1/photos/pho_1/download?expires=")
    stamp, sig = _parts(url)
    verify_download_link(KEY, "pho_1", stamp, sig, now=NOW + 3599)
    with pytest.raises(DownloadLinkExpired):
        verify_download_link(KEY, "pho_1", stamp, sig, now=expires + 1)


@pytest.mark.parametrize(
    ("photo", "change"),
    [
        ("pho_2", None),  # another photo
        ("pho_1", "expires"),  # a later expiry
        ("pho_1", "signature"),
        ("pho_1", "key"),
    ],
)
def test_tampered_links_are_invalid(photo: str, change: str | None) -> None:
    url, _ = sign_download_link(KEY, "https://h/x", "pho_1", now=NOW)
    stamp, sig = _parts(url)
    key = KEY
    if change == "expires":
        stamp = str(int(stamp) + 86_400)
    elif change == "signature":
        sig = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    elif change == "key":
        key = b"q" * 32
    with pytest.raises(DownloadLinkInvalid):
        verify_download_link(key, photo, stamp, sig, now=NOW)


@pytest.mark.parametrize(
    ("expires", "signature"),
    [(None, "ab"), ("1", None), ("-1", "ab"), ("1e9", "ab"), ("١٢٣", "ab"), ("9" * 40, "ab")],
)
def test_malformed_links_are_invalid(expires: str | None, signature: str | None) -> None:
    with pytest.raises(DownloadLinkInvalid):
        verify_download_link(KEY, "pho_1", expires, signature, now=NOW)
