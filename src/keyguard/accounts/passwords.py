"""The password rules people's passwords must meet (NIST SP 800-63B §5.1.1.2), and
hashing that keeps the event loop free and the answer's timing independent of the email.

- Length is counted in characters after Unicode NFKC normalisation: 12 to 128, never
  truncated (argon2id hashes the whole of it).
- No composition rules (NIST advises against them); instead, a password on the shipped
  list of common ones is refused, also when it is one of those with digits or symbols
  around it ("Password2024!"), or made of one repeated character or a keyboard run.
- Hashing: argon2id at the library's RFC 9106 "low memory" parameters (t=3, m=64 MiB,
  p=4), above OWASP's minimum for argon2id (m=19 MiB, t=2). It runs in a worker thread.
- An unknown email is checked against a fixed dummy hash with the same parameters, so a
  sign-in costs the same whether or not the account exists.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from importlib.resources import files

import anyio

from keyguard.crypto.passwords import hash_account_password, verify_account_password
from keyguard.errors import ValidationFailed
from keyguard.i18n import translate

MIN_CHARS = 12
MAX_CHARS = 128
_AROUND = re.compile(r"^[\W\d_]*(.*?)[\W\d_]*$")
_RUNS = (
    "0123456789",
    "abcdefghijklmnopqrstuvwxyz",
    "qwertyuiopasdfghjklzxcvbnm",
    "1qaz2wsx3edc4rfv",
)


@cache
def common_passwords() -> frozenset[str]:
    text = files("keyguard.accounts").joinpath("common-passwords.txt").read_text("utf-8")
    return frozenset(line for line in text.splitlines() if line and not line.startswith("#"))


def normalise(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


def _is_run(text: str) -> bool:
    low = text.lower()
    return any(low in run * 13 or low in run[::-1] * 13 for run in _RUNS)


def _refused(key: str, **fields: object) -> ValidationFailed:
    return ValidationFailed(translate(key, **fields), field="password")


def check_new_password(password: str, *, email: str | None = None) -> str:
    """The normalised password, or ``ValidationFailed`` saying which rule it breaks."""
    password = normalise(password)
    if len(password) < MIN_CHARS:
        raise _refused("password.too_short", min=MIN_CHARS)
    if len(password) > MAX_CHARS:
        raise _refused("password.too_long", max=MAX_CHARS)
    low = password.lower()
    core = _AROUND.sub(r"\1", low)
    common = common_passwords()
    if low in common or core in common or (core and len(set(core)) == 1):
        raise _refused("password.too_common")
    if len(set(low)) <= 3 or _is_run(low):
        raise _refused("password.too_regular")
    if email:
        local = email.split("@", 1)[0].lower()
        if low in (email.lower(), local) or core == local:
            raise _refused("password.is_email")
    return password


async def hash_password(password: str) -> str:
    """argon2id of the (already checked, normalised) password, off the event loop."""
    return await anyio.to_thread.run_sync(hash_account_password, password)


# Made once at import, so the first unknown email costs what every later one does.
_DUMMY_HASH = hash_account_password("keyguard dummy password for unknown emails")


async def verify_password(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored``; with no account (``None``) the same
    argon2id work is done against a dummy hash and the answer is False."""
    candidate = normalise(password)
    if stored is None or len(candidate) > MAX_CHARS:  # no stored password is longer
        await anyio.to_thread.run_sync(verify_account_password, _DUMMY_HASH, "")
        return False
    return await anyio.to_thread.run_sync(verify_account_password, stored, candidate)
