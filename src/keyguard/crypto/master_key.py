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


PREVIOUS_FILE = "master.key.previous"


def decode_master_keys(text: str) -> list[bytes]:
    """Several keys, separated by commas or new lines (KEYGUARD_PREVIOUS_MASTER_KEYS, the
    data dir's ``master.key.previous``)."""
    return [decode_master_key(k) for k in text.replace(",", "\n").split() if k.strip()]


def previous_master_keys(data_dir: Path) -> list[bytes]:
    """The keys a master-key rotation moved aside in the data dir (they only open)."""
    path = data_dir / PREVIOUS_FILE
    return decode_master_keys(path.read_text()) if path.exists() else []


def new_master_key_text() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def replace_master_key(data_dir: Path) -> bytes:
    """Embedded rotation: a new ``master.key``; the old one is appended to
    ``master.key.previous`` first, so no moment exists where it is in neither file."""
    path = data_dir / "master.key"
    old = path.read_text().strip()
    decode_master_key(old)
    previous = data_dir / PREVIOUS_FILE
    fd = os.open(previous, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as fh:
        fh.write(old + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    encoded = new_master_key_text()
    tmp = data_dir / "master.key.new"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(encoded + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)  # atomic: a reader sees the old key or the new one
    return decode_master_key(encoded)


def load_or_create_master_key(data_dir: Path, *, database: Path | None = None) -> bytes:
    """Embedded mode: generate once into the data dir (mode 0600) and reuse.

    Never generated next to an existing ``database``: its key hashes, sealed secrets and
    audit chain all depend on the lost key, and a new one would make them unreadable
    (``ValueError``, to be restored from a backup instead).
    """
    path = data_dir / "master.key"
    if path.exists():
        return decode_master_key(path.read_text())
    if database is not None and database.exists() and database.stat().st_size > 0:
        raise ValueError(
            f"{path} is missing but the database {database} exists: restore the master key "
            "from your backup (or set KEYGUARD_MASTER_KEY); a new key would leave every "
            "API key, secret and audit entry unverifiable"
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    encoded = new_master_key_text()
    # O_EXCL: two processes starting together must not write two different keys.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return decode_master_key(path.read_text())
    with os.fdopen(fd, "w") as fh:
        fh.write(encoded + "\n")
    return decode_master_key(encoded)
