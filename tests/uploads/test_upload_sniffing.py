"""Image types come from the bytes: magic numbers of JPEG, PNG, GIF, WebP and HEIC."""

from __future__ import annotations

import pytest

from keyguard.uploads.sniff import sniff_image_type


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
        (b"\xff\xd8\xff\xe1\x00\x10Exif", "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png"),
        (b"GIF87a\x01\x00", "image/gif"),
        (b"GIF89a\x01\x00", "image/gif"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", "image/heic"),
        (b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00", "image/heif"),
    ],
)
def test_each_supported_format_is_recognised(head: bytes, expected: str) -> None:
    assert sniff_image_type(head) == expected


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"%PDF-1.7",
        b"<svg xmlns='http://www.w3.org/2000/svg'>",  # scriptable: never an "image" here
        b"<html><script>",
        b"RIFF\x24\x00\x00\x00WAVEfmt ",  # RIFF, but audio
        b"\x00\x00\x00\x18ftypisom",  # MP4 video
        b"\xff\xd8",  # truncated JPEG marker
        b"PK\x03\x04",
        b"\x89PNG\r\n\x1a",  # truncated signature
    ],
)
def test_anything_else_is_not_an_image(head: bytes) -> None:
    assert sniff_image_type(head) is None
