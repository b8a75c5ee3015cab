"""Fast keyed hash for high-entropy secrets (API key secrets, recovery codes of 128+ bits).

A slow password hash (argon2/bcrypt) protects *guessable* secrets. Our key secrets carry
256 random bits, so brute force is hopeless whatever the hash speed; a slow hash would
only burn CPU on every request. HMAC-SHA256 under a server-side pepper (derived from the
master key) additionally makes a stolen database useless without the master key.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def derive_subkey(master_key: bytes, purpose: str) -> bytes:
    """HKDF-SHA256 (RFC 5869) so each use of the master key gets its own key."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(
        master_key
    )


class SecretHasher:
    __slots__ = ("_dummy", "_pepper")

    def __init__(self, pepper: bytes) -> None:
        self._pepper = pepper
        self._dummy = self.hash("keyguard-dummy-secret-for-unknown-ids")

    def hash(self, secret: str) -> bytes:
        return hmac.digest(self._pepper, secret.encode(), hashlib.sha256)

    def matches(self, secret: str, stored: bytes | None) -> bool:
        """Constant-time check. ``stored=None`` (unknown id) does the same work and fails."""
        candidate = hmac.digest(self._pepper, secret.encode(), hashlib.sha256)
        if stored is None:
            hmac.compare_digest(candidate, self._dummy)
            return False
        return hmac.compare_digest(candidate, stored)

    def __repr__(self) -> str:
        return "SecretHasher(<redacted>)"
