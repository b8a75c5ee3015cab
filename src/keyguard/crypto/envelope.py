"""AES-256-GCM encryption at rest for secrets the server must use again.

Ciphertexts are ``kid.nonce.ciphertext`` (base64url parts) so the master key can be
rotated: old ciphertexts name the key that sealed them. The optional ``context`` is bound
as associated data, so a ciphertext copied to another row (another key id) fails to open.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable, Iterable

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
    """Seals with the current master key; opens with any known one.

    ``more`` is asked for keys when a ciphertext names a key id not known yet (at most
    once a second for each such id): an embedded server learns the key ``keyguard
    master-key rotate`` wrote into its data dir while it runs, so values already re-sealed
    under it keep opening.
    """

    def __init__(
        self,
        current: bytes,
        *previous: bytes,
        more: Callable[[], Iterable[bytes]] | None = None,
    ) -> None:
        self._current_kid = key_id_for(current)
        self._keys: dict[str, AESGCM] = {}
        for key in (current, *previous):
            self._learn(key)
        self._more = more
        self._asked: dict[str, float] = {}  # unknown kid -> when ``more`` was last asked

    def _learn(self, key: bytes) -> None:
        self._keys.setdefault(key_id_for(key), AESGCM(derive_subkey(key, "keyguard/envelope")))

    @property
    def current_kid(self) -> str:
        """The id every new seal carries (``kid`` of ``kid.nonce.ciphertext``)."""
        return self._current_kid

    def knows(self, kid: str) -> bool:
        return kid in self._keys

    def _aead(self, kid: str) -> AESGCM:
        aead = self._keys.get(kid)
        # Asked at most once a second per unknown kid: a damaged value cannot make every
        # open read the disk, and one unknown kid never delays learning another.
        if aead is None and self._more is not None:
            now = time.monotonic()
            if now - self._asked.get(kid, -1e9) > 1.0:
                self._asked[kid] = now
                for key in self._more():
                    self._learn(key)
                aead = self._keys.get(kid)
        if aead is None:
            raise KeyError(kid)
        return aead

    def seal(self, plaintext: str, context: str = "") -> str:
        nonce = os.urandom(12)
        ct = self._keys[self._current_kid].encrypt(nonce, plaintext.encode(), context.encode())
        return f"{self._current_kid}.{_b64e(nonce)}.{_b64e(ct)}"

    def open(self, sealed: str, context: str = "") -> str:
        try:
            kid, nonce, ct = sealed.split(".")
            aead = self._aead(kid)
            return aead.decrypt(_b64d(nonce), _b64d(ct), context.encode()).decode()
        except (ValueError, KeyError, InvalidTag) as exc:
            raise DecryptionError("cannot open sealed secret") from exc

    def reseal(self, sealed: str, context: str = "") -> str | None:
        """The value sealed again with the current key, or None when it already is."""
        if sealed.startswith(self._current_kid + "."):
            return None
        return self.seal(self.open(sealed, context), context)

    def __repr__(self) -> str:
        return "Envelope(<redacted>)"
