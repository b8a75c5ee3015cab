"""AES-256-GCM encryption at rest for secrets the server must use again.

Ciphertexts are ``kid.nonce.ciphertext`` (base64url parts) so the master key can be
rotated: old ciphertexts name the key that sealed them. The optional ``context`` is bound
as associated data, so a ciphertext copied to another row (another key id) fails to open.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keyguard.crypto.hashing import derive_subkey


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_id_for(master_key: bytes) -> str:
    return _b64e(derive_subkey(master_key, "keyguard/kid"))[:8]


class DecryptionError(Exception):
    pass


class Envelope:
    """Seals with the current master key; opens with any known one."""

    def __init__(self, current: bytes, *previous: bytes) -> None:
        self._current_kid = key_id_for(current)
        self._keys = {
            key_id_for(k): AESGCM(derive_subkey(k, "keyguard/envelope"))
            for k in (current, *previous)
        }

    def seal(self, plaintext: str, context: str = "") -> str:
        nonce = os.urandom(12)
        ct = self._keys[self._current_kid].encrypt(nonce, plaintext.encode(), context.encode())
        return f"{self._current_kid}.{_b64e(nonce)}.{_b64e(ct)}"

    def open(self, sealed: str, context: str = "") -> str:
        try:
            kid, nonce, ct = sealed.split(".")
            aead = self._keys[kid]
            return aead.decrypt(_b64d(nonce), _b64d(ct), context.encode()).decode()
        except (ValueError, KeyError, InvalidTag) as exc:
            raise DecryptionError("cannot open sealed secret") from exc

    def __repr__(self) -> str:
        return "Envelope(<redacted>)"
