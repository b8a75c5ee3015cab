"""The master key: the root of every at-rest secret (pepper for key hashes, AES-GCM seals)."""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path


def decode_master_key(text: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except ValueError as exc:
        raise ValueError("KEYGUARD_MASTER_KEY must be base64 of 32 random bytes") from exc
    if len(raw) < 32:
        raise ValueError("KEYGUARD_MASTER_KEY must be base64 of at least 32 random bytes")
    return raw


def load_or_create_master_key(data_dir: Path) -> bytes:
    """Embedded mode: generate once into the data dir (mode 0600) and reuse."""
    path = data_dir / "master.key"
    if path.exists():
        return decode_master_key(path.read_text())
    data_dir.mkdir(parents=True, exist_ok=True)
    encoded = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    # O_EXCL: two processes starting together must not write two different keys.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return decode_master_key(path.read_text())
    with os.fdopen(fd, "w") as fh:
        fh.write(encoded + "\n")
    return decode_master_key(encoded)
