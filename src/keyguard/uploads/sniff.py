"""The image type of a file, read from its first bytes, never from its name or headers.

A client's ``Content-Type`` and file extension are claims; the magic number is what a
viewer will act on. Only the formats phones and browsers produce are accepted.
"""

from __future__ import annotations

# ISO/IEC 23008-12 (HEIF) major brands of still images from phone cameras.
_HEIC_BRANDS = {b"heic": "image/heic", b"heix": "image/heic", b"heim": "image/heic",
                b"heis": "image/heic", b"hevc": "image/heic", b"hevx": "image/heic",
                b"mif1": "image/heif", b"msf1": "image/heif"}  # fmt: skip

SNIFF_BYTES = 32  # how much of the file :func:`sniff_image_type` needs


def sniff_image_type(head: bytes) -> str | None:
    """The MIME type of the image starting with ``head``, or None when it is not one.

    >>> sniff_image_type(bytes.fromhex("89504e470d0a1a0a") + b"rest")
    'image/png'
    """
    if head.startswith(b"\xff\xd8\xff"):  # JPEG SOI + first marker
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):  # PNG signature (RFC 2083 §3.1)
        return "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":  # RIFF container, WebP form type
        return "image/webp"
    if head[4:8] == b"ftyp":  # ISO BMFF: size, "ftyp", major brand
        return _HEIC_BRANDS.get(head[8:12])
    return None


EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "image/heic": ".heic",
    "image/heif": ".heif",
}

__all__ = ["EXTENSIONS", "SNIFF_BYTES", "sniff_image_type"]
