"""TOTP (RFC 6238) for API keys and accounts: secrets, enrolment URIs/QR codes, checks.

Codes are computed here with ``hmac`` (RFC 4226 §5.3; tested against the RFC 6238 vectors
and pyotp), from a secret decoded once (:class:`TotpKey`), because this runs on every
request of a TOTP key. What pyotp cannot do either is tell *which* time step matched, and
callers need that to accept each code once (CONTRACT §4: "each code accepted once"), so
:func:`match_totp` returns the step counter and the caller refuses any step it has
already seen for that secret.

Example::

    secret = new_totp_secret()
    step = match_totp(secret, "123456", now=clock.now())   # raises TotpInvalid
    if step <= last_accepted_step:
        raise TotpInvalid()  # replay
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct

import pyotp
import segno

from keyguard.errors import TotpInvalid

__all__ = [
    "TotpKey",
    "match_totp",
    "new_totp_secret",
    "provisioning_uri",
    "qr_svg",
    "totp_code",
]

DEFAULT_STEP = 30
DEFAULT_DIGITS = 6
_SECRET_BYTES = 20  # 160 bits: RFC 4226 §4 R6 recommends 160; 32 base32 characters


def new_totp_secret() -> str:
    """A fresh 160-bit secret as 32 unpadded base32 characters (what authenticators expect)."""
    return base64.b32encode(secrets.token_bytes(_SECRET_BYTES)).decode("ascii")


def provisioning_uri(secret: str, account_name: str, issuer: str) -> str:
    """The ``otpauth://totp/…`` URI an authenticator app scans (Key Uri Format)."""
    return str(pyotp.TOTP(secret).provisioning_uri(name=account_name, issuer_name=issuer))


def qr_svg(uri: str) -> str:
    """An inline ``<svg>`` QR code of ``uri``, ready to embed in HTML or JSON."""
    # Error correction "M" keeps the code scannable from a slightly blurry screen.
    return str(segno.make(uri, error="m", micro=False).svg_inline(scale=4))


def _check_params(step: int, digits: int, window: int) -> None:
    # Configuration errors, not authentication failures: programming mistakes surface.
    if step <= 0:
        raise ValueError("step must be positive")
    if not 6 <= digits <= 10:  # RFC 4226 §5.3: at least 6 digits; pyotp caps at 10
        raise ValueError("digits must be between 6 and 10")
    if window < 0:
        raise ValueError("window must not be negative")


def _decode_secret(secret: str) -> bytes:
    # As pyotp does: base32, case-insensitive, padding optional. binascii.Error (a
    # ValueError) when it is not base32: a server bug, not a bad code.
    return base64.b32decode(secret + "=" * (-len(secret) % 8), casefold=True)


_COUNTER = struct.Struct(">Q")


_SHA1_BLOCK = 64


def _offsets(window: int) -> tuple[int, ...]:
    return tuple(sorted(range(-window, window + 1), key=lambda o: (abs(o), o)))


_OFFSETS = tuple(_offsets(w) for w in range(4))
# Codes a TotpKey keeps: the window's three steps, and the next ones as time moves on.
_CODES_KEPT = 8


def _hotp_bytes(key: bytes, counter: int, digits: int) -> str:
    # RFC 6238 §4.2: TOTP = HOTP(K, T), with SHA-1 as deployed.
    return _truncate(hmac.digest(key, _COUNTER.pack(counter), "sha1"), digits)


def _truncate(mac: bytes, digits: int) -> str:
    # RFC 4226 §5.3 dynamic truncation.
    offset = mac[-1] & 0x0F
    value = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def _hotp(secret: str, counter: int, digits: int) -> str:
    return _hotp_bytes(_decode_secret(secret), counter, digits)


def totp_code(
    secret: str, now: float, *, step: int = DEFAULT_STEP, digits: int = DEFAULT_DIGITS
) -> str:
    """The code for ``now`` (clients, tests and the enrolment confirmation screen)."""
    _check_params(step, digits, 0)
    return _hotp(secret, int(now // step), digits)


def match_totp(
    secret: str,
    code: str,
    now: float,
    *,
    window: int = 1,
    step: int = DEFAULT_STEP,
    digits: int = DEFAULT_DIGITS,
) -> int:
    """Return the time-step counter ``code`` belongs to, or raise ``TotpInvalid``.

    ``code`` must be exactly ``digits`` ASCII digits: no spaces, signs or full-width
    digits (``str.isdigit`` alone accepts U+FF11 and friends). Steps ``now ± window``
    are tried (RFC 6238 §5.2: allow for clock drift and transmission delay), the current
    one first, then the nearest: the first match wins (so if two steps share a code, the
    current step does). Each comparison is constant-time; how many steps were tried says
    only which step matched, which the caller's own clock already tells it. ``ValueError``
    if ``secret`` is not base32 (a server bug, not a bad code).
    """
    _check_params(step, digits, window)
    return TotpKey(secret, step=step, digits=digits).match(code, now, window=window)


class TotpKey:
    """A TOTP secret prepared once, for checking many codes (the key cache holds these).

    ``TotpKey(secret).match(code, now)`` is :func:`match_totp` without decoding the
    secret on every request, and with the HMAC key schedule precomputed (RFC 2104 §2:
    the hash states after ``K xor ipad`` and ``K xor opad`` are copied, not rebuilt).
    The codes of the last few steps are kept: every request in a 30-second step checks
    against the same code, computed once.
    """

    __slots__ = ("_codes", "_digits", "_inner", "_outer", "_step", "secret_id")

    def __init__(
        self, secret: str, *, step: int = DEFAULT_STEP, digits: int = DEFAULT_DIGITS
    ) -> None:
        _check_params(step, digits, 0)
        key = _decode_secret(secret)
        # Names the secret, not the key holding it: keys sharing a secret (a rotated
        # pair) share its used steps, so a code is accepted once across all of them.
        self.secret_id = hashlib.sha256(b"totp-secret-id:" + key).hexdigest()[:32]
        if len(key) > _SHA1_BLOCK:
            key = hashlib.sha1(key).digest()  # noqa: S324 - RFC 2104 key hashing, HMAC-SHA1
        key = key.ljust(_SHA1_BLOCK, b"\0")
        # HMAC-SHA1 is what RFC 6238 authenticator apps compute; HMAC does not need
        # SHA-1 to be collision resistant (RFC 2104 §6).
        self._inner = hashlib.sha1(bytes(b ^ 0x36 for b in key))  # noqa: S324
        self._outer = hashlib.sha1(bytes(b ^ 0x5C for b in key))  # noqa: S324
        self._step = step
        self._digits = digits
        self._codes: dict[int, str] = {}

    def _code(self, counter: int) -> str:
        code = self._codes.get(counter)
        if code is None:
            inner = self._inner.copy()
            inner.update(_COUNTER.pack(counter))
            outer = self._outer.copy()
            outer.update(inner.digest())
            code = _truncate(outer.digest(), self._digits)
            if len(self._codes) >= _CODES_KEPT:
                self._codes.clear()
            self._codes[counter] = code
        return code

    def __repr__(self) -> str:  # never show the secret
        return "TotpKey(<redacted>)"

    def match(self, code: str, now: float, *, window: int = 1) -> int:
        """See :func:`match_totp`."""
        digits = self._digits
        if not isinstance(code, str) or len(code) != digits or not code.isascii():
            raise TotpInvalid()
        if not code.isdigit():
            raise TotpInvalid()
        if window < 0:
            raise ValueError("window must not be negative")
        current = int(now // self._step)
        compare = hmac.compare_digest
        # Order 0, -1, +1, -2, +2, ... so the first match is the most plausible step.
        for offset in _OFFSETS[window] if window < len(_OFFSETS) else _offsets(window):
            counter = current + offset
            if counter >= 0 and compare(self._code(counter), code):
                return counter
        raise TotpInvalid()
