"""Hashes for secrets people choose: argon2id for accounts, bcrypt for session passwords.

Both are deliberately slow, so callers run them in a worker thread (``anyio.to_thread``)
to keep the event loop serving other requests.
"""

from __future__ import annotations

import bcrypt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# argon2id at OWASP's parameters (Password Storage Cheat Sheet: m=19 MiB, t=2, p=1).
# The library's RFC 9106 default (64 MiB, t=3, p=4) costs three times the memory per
# concurrent sign-in, which an attacker sending sign-ins in parallel multiplies.
_argon2 = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)

# bcrypt only reads 72 bytes; longer inputs are refused rather than silently truncated.
BCRYPT_MAX_BYTES = 72


def hash_account_password(password: str) -> str:
    return _argon2.hash(password)


def verify_account_password(stored: str, password: str) -> bool:
    try:
        return _argon2.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def account_hash_outdated(stored: str) -> bool:
    """Whether a stored hash was made with other parameters (rehash it at sign-in)."""
    try:
        return _argon2.check_needs_rehash(stored)
    except InvalidHashError:
        return False


def hash_session_password(password: str) -> str:
    data = password.encode()
    if len(data) > BCRYPT_MAX_BYTES:
        raise ValueError(f"password must be at most {BCRYPT_MAX_BYTES} bytes")
    return bcrypt.hashpw(data, bcrypt.gensalt(rounds=12)).decode()


def verify_session_password(stored: str, password: str) -> bool:
    data = password.encode()
    if len(data) > BCRYPT_MAX_BYTES:
        return False
    return bcrypt.checkpw(data, stored.encode())
