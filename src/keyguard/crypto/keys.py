"""API key format: ``{prefix}_{environment}_{id}{secret}`` with a checksum inside the secret.

Layout (all base62, fixed lengths so parsing needs no separators inside the body)::

    aptr_live_3hK9wQ2mZ8xY1cVb  R4nD0m...43 chars...  C8kSum
    └─── public key id ──────┘  └─ 256-bit random ─┘  └ CRC32 ┘
                                └──────── secret (49 chars) ───┘

The public id (``aptr_live_3hK9wQ2mZ8xY1cVb``) is loggable and names the key in URLs.
The checksum is CRC32 over ``id + random`` (like GitHub's token format), so a mistyped or
forged key is refused before any look-up, also when it arrives split into id and secret
(``x-api-key``/``x-api-secret`` or ``ApiKey base64(id:secret)``).
"""

from __future__ import annotations

import re
import secrets
import zlib
from dataclasses import dataclass

from keyguard.errors import InvalidKey

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
ENVIRONMENTS = ("live", "test")

ID_CHARS = 16  # ~95 bits: unique ids without coordination
RANDOM_CHARS = 43  # 62**43 > 2**256
CHECKSUM_CHARS = 6  # 62**6 > 2**32
SECRET_CHARS = RANDOM_CHARS + CHECKSUM_CHARS
PREFIX_MAX = 16
ROOT_PREFIX = "kgroot"  # root keys (management credentials); reserved for them alone

# One compiled pattern does the format check in a single pass (hot path).
_ID_PATTERN = rf"[a-z][a-z0-9]{{0,{PREFIX_MAX - 1}}}_(?:live|test)_[0-9A-Za-z]{{{ID_CHARS}}}"
_KEY_RE = re.compile(rf"({_ID_PATTERN})([0-9A-Za-z]{{{SECRET_CHARS}}})")
_ID_RE = re.compile(_ID_PATTERN)
_SECRET_RE = re.compile(rf"[0-9A-Za-z]{{{SECRET_CHARS}}}")


def _random_base62(n: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(n))


def _base62_fixed(value: int, width: int) -> str:
    out = []
    for _ in range(width):
        value, rem = divmod(value, 62)
        out.append(ALPHABET[rem])
    return "".join(reversed(out))


def _checksum(id_: str, random_part: str) -> str:
    return _base62_fixed(zlib.crc32((id_ + random_part).encode("ascii")), CHECKSUM_CHARS)


def valid_prefix(prefix: str) -> bool:
    """Prefixes are short lower-case ASCII words: they end up in every key and log line."""
    return (
        0 < len(prefix) <= PREFIX_MAX
        and prefix.isascii()
        and prefix.isalnum()
        and prefix.islower()
        and prefix[0].isalpha()
    )


@dataclass(frozen=True, slots=True)
class ParsedKey:
    id: str
    secret: str

    def __repr__(self) -> str:  # the secret never reaches a log line
        return f"ParsedKey(id={self.id!r}, secret=<redacted>)"


@dataclass(frozen=True, slots=True)
class IssuedKey:
    id: str
    secret: str

    @property
    def key(self) -> str:
        return self.id + self.secret

    def __repr__(self) -> str:
        return f"IssuedKey(id={self.id!r}, secret=<redacted>)"


def new_key_id(prefix: str, environment: str) -> str:
    if not valid_prefix(prefix) or environment not in ENVIRONMENTS:
        raise ValueError("invalid key prefix or environment")
    return f"{prefix}_{environment}_{_random_base62(ID_CHARS)}"


def new_secret_for(key_id: str) -> str:
    random_part = _random_base62(RANDOM_CHARS)
    return random_part + _checksum(key_id, random_part)


def issue_key(prefix: str, environment: str) -> IssuedKey:
    key_id = new_key_id(prefix, environment)
    return IssuedKey(key_id, new_secret_for(key_id))


def looks_like_key_id(text: str) -> bool:
    """True for a well-formed public id (``prefix_env_XXXXXXXXXXXXXXXX``)."""
    return _ID_RE.fullmatch(text) is not None


def parse_key(key: str) -> ParsedKey:
    """Split a full key into id and secret, checking format and checksum. No I/O."""
    match = _KEY_RE.fullmatch(key)
    if match is None:
        raise InvalidKey()
    return _checked(match[1], match[2])


def check_pair(key_id: str, secret: str) -> ParsedKey:
    """Validate an id/secret pair presented separately. No I/O."""
    if _ID_RE.fullmatch(key_id) is None or _SECRET_RE.fullmatch(secret) is None:
        raise InvalidKey()
    return _checked(key_id, secret)


def _checked(key_id: str, secret: str) -> ParsedKey:
    random_part = secret[:RANDOM_CHARS]
    # CRC32 is public and not a MAC: it only screens typos and junk before a look-up.
    if _checksum(key_id, random_part) != secret[RANDOM_CHARS:]:
        raise InvalidKey()
    return ParsedKey(key_id, secret)


def key_environment(key_id: str) -> str:
    return key_id.split("_")[1]
