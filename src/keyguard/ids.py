"""Public resource ids: a type prefix and 16 random base62 characters (~95 bits)."""

from __future__ import annotations

import secrets

from keyguard.crypto.keys import ALPHABET


def new_id(kind: str) -> str:
    return kind + "_" + "".join(secrets.choice(ALPHABET) for _ in range(16))
