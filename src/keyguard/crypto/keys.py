"""API key format: ``{prefix}_{environment}_{id}{secret}`` with a checksum inside the secret.

Layout (all base62, fixed lengths so parsing needs no separators inside the body)::

    aptr_live_3hK9wQ2mZ8xY T4gXq9  R4nD0m...43 chars...  C8kSum
              └─ random ─┘ └ tag┘  └─ 256-bit random ─┘  └CRC32┘
    └────── public key id ──────┘  └─── secret (49 chars) ────┘

The public id (``aptr_live_3hK9wQ2mZ8xYT4gXq9``) is loggable and names the key in URLs.
After ``{prefix}_{environment}_`` it has 12 random characters (~71 bits, unique without
coordination) and a 6-character **tag**: HMAC-SHA256 of ``prefix_environment_random``
under a subkey of the master key, its first 6 bytes each written as a base62 character.
Only Keyguard can compute it, so an id nobody issued is refused before any look-up
(``KeyIdTagger.admits``): anyone can mint ids that pass the public checksum, and each
would otherwise cost a database query.

The checksum is CRC32 over ``id + random`` (like GitHub's token format), tag included, so
a mistyped key is refused before any look-up, also when it arrives split into id and
secret (``x-api-key``/``x-api-secret`` or ``ApiKey base64(id:secret)``). It is public on
purpose: secret scanners check it without asking anyone.

Keys issued before ids had a tag have 16 random characters and no tag (``aptr_live_`` +
16). Both shapes parse; an untagged id is admitted only if it is one of the ids that
existed when the runtime started (no untagged id is ever issued again). Ids are at most
40 characters long (a 16-character prefix), the width of the narrowest column holding one.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from keyguard.errors import InvalidKey

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
ENVIRONMENTS = ("live", "test")

ID_RANDOM_CHARS = 12  # ~71 bits: unique ids without coordination
# Each tag character is a digest byte mod 62, so 8 characters are a little likelier than
# the others (5/256, not 4/256): the likeliest tag is right with odds of 1 in 1.8e10.
TAG_CHARS = 6
ID_CHARS = ID_RANDOM_CHARS + TAG_CHARS
LEGACY_ID_CHARS = 16  # ids issued before the tag: 16 random characters, no tag
RANDOM_CHARS = 43  # 62**43 > 2**256
CHECKSUM_CHARS = 6  # 62**6 > 2**32
SECRET_CHARS = RANDOM_CHARS + CHECKSUM_CHARS
PREFIX_MAX = 16
ROOT_PREFIX = "kgroot"  # root keys (management credentials); reserved for them alone

# One compiled pattern does the format check in a single pass (hot path). Both id
# lengths: a full key's secret has a fixed length, so the split is never ambiguous.
_STEM = rf"[a-z][a-z0-9]{{0,{PREFIX_MAX - 1}}}_(?:live|test)_"
_ID_PATTERN = (
    rf"{_STEM}[0-9A-Za-z]{{{LEGACY_ID_CHARS}}}(?:[0-9A-Za-z]{{{ID_CHARS - LEGACY_ID_CHARS}}})?"
)
_KEY_RE = re.compile(rf"({_ID_PATTERN})([0-9A-Za-z]{{{SECRET_CHARS}}})")
_ID_RE = re.compile(_ID_PATTERN)
_TAGGED_ID_RE = re.compile(rf"{_STEM}[0-9A-Za-z]{{{ID_CHARS}}}")
_LEGACY_ID_RE = re.compile(rf"{_STEM}[0-9A-Za-z]{{{LEGACY_ID_CHARS}}}")
_TAG_ALPHABET = bytes(ord(ALPHABET[b % len(ALPHABET)]) for b in range(256))
_SECRET_RE = re.compile(rf"[0-9A-Za-z]{{{SECRET_CHARS}}}")


def _random_base62(n: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(n))


def _base62_fixed(value: int, width: int) -> str:
    out = []
    for _ in range(width):
        value, rem = divmod(value, 62)
        out.append(ALPHABET[rem])
    return "".join(reversed(out))


# Every two-character base62 string, by value: a checksum (6 characters, CRC32 < 62**6)
# is three look-ups instead of six divisions (on every verification: issue 11).
_PAIRS = tuple(a + b for a in ALPHABET for b in ALPHABET)
_PAIR = len(_PAIRS)


def _checksum(id_: str, random_part: str) -> str:
    high, low = divmod(zlib.crc32((id_ + random_part).encode("ascii")), _PAIR)
    high, middle = divmod(high, _PAIR)
    return _PAIRS[high] + _PAIRS[middle] + _PAIRS[low]


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


def new_secret_for(key_id: str) -> str:
    random_part = _random_base62(RANDOM_CHARS)
    return random_part + _checksum(key_id, random_part)


class KeyIdTagger:
    """Issues key ids with their keyed tag, and tells, with no I/O, whether an id could
    name a key: its tag is right, or it is one of the ``legacy_ids`` (ids issued before
    the tag, all known when the runtime starts). Constant time in the tag."""

    __slots__ = ("_legacy", "_mac")

    def __init__(self, subkey: bytes, legacy_ids: Iterable[str] = ()) -> None:
        if len(subkey) < 32:
            raise ValueError("the key id tag subkey must have at least 32 bytes")
        # Keyed once; each tag copies the keyed state (a third cheaper than hmac.digest).
        self._mac = hmac.new(subkey, digestmod=hashlib.sha256)
        self._legacy = frozenset(i for i in legacy_ids if _LEGACY_ID_RE.fullmatch(i))

    def _tag(self, stem: str) -> bytes:
        mac = self._mac.copy()
        mac.update(stem.encode("ascii"))
        digest = mac.digest()
        # One base62 character per digest byte (byte mod 62, in C: this is the hot path).
        return digest[:TAG_CHARS].translate(_TAG_ALPHABET)

    def new_id(self, prefix: str, environment: str) -> str:
        if not valid_prefix(prefix) or environment not in ENVIRONMENTS:
            raise ValueError("invalid key prefix or environment")
        stem = f"{prefix}_{environment}_{_random_base62(ID_RANDOM_CHARS)}"
        return stem + self._tag(stem).decode("ascii")

    def issue(self, prefix: str, environment: str) -> IssuedKey:
        """The one way keys are made: a tagged id and a secret checksummed over it."""
        key_id = self.new_id(prefix, environment)
        return IssuedKey(key_id, new_secret_for(key_id))

    def admits(self, key_id: str) -> bool:
        """False for an id no key can have: refuse it without looking it up."""
        if _TAGGED_ID_RE.fullmatch(key_id) is not None:
            stem, tag = key_id[:-TAG_CHARS], key_id[-TAG_CHARS:]
            return hmac.compare_digest(self._tag(stem), tag.encode("ascii"))
        return key_id in self._legacy

    def __repr__(self) -> str:
        return "KeyIdTagger(<redacted>)"


def looks_like_legacy_key_id(text: str) -> bool:
    """True for a well-formed id of the shape issued before the tag (16, no tag)."""
    return _LEGACY_ID_RE.fullmatch(text) is not None


def looks_like_key_id(text: str) -> bool:
    """True for a well-formed public id of either shape (``prefix_env_`` + 18 or 16)."""
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
    # CRC32 is public and not a MAC: it only screens typos and junk. Forged ids are the
    # tag's business (KeyIdTagger.admits), checked by the engine before any look-up.
    if _checksum(key_id, random_part) != secret[RANDOM_CHARS:]:
        raise InvalidKey()
    return ParsedKey(key_id, secret)


def key_environment(key_id: str) -> str:
    return key_id.split("_")[1]
