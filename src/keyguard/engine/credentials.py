"""The four ways to present a key (CONTRACT §4), parsed without any I/O.

- ``Authorization: Bearer KEY``
- ``API-Key: KEY`` / ``X-API-Key: KEY`` (header names are case-insensitive)
- ``X-API-Key: base64(id)`` with ``X-API-Secret: base64(secret)``
- ``Authorization: ApiKey base64(id:secret)``
A bare public id in ``X-API-Key`` (no secret header) marks a signed request, and a JWT
in ``Authorization: Bearer`` is an OAuth access token, not a key. A request may carry
both a key and a token (seed 002: an operation may need both): :func:`extract_key_and_token`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass

from keyguard.crypto.keys import check_pair, looks_like_key_id, parse_key
from keyguard.engine.facts import AccessToken, Credentials
from keyguard.errors import InvalidKey

_MAX_CREDENTIAL_CHARS = 512


def _b64(text: str) -> str:
    if len(text) > _MAX_CREDENTIAL_CHARS:
        raise InvalidKey()
    try:
        return base64.b64decode(text.strip(), validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidKey() from None


def _from_key(text: str) -> Credentials:
    parsed = parse_key(text.strip())
    return Credentials(parsed.id, parsed.secret)


def looks_like_jwt(value: str) -> bool:
    """A compact JWS: three base64url parts, the header a JSON object (``eyJ`` = ``{"``).
    Keyguard keys contain no dots, so the two can never be confused."""
    return value.startswith("eyJ") and value.count(".") == 2


def extract_credentials(headers: Mapping[str, str]) -> Credentials | AccessToken | None:
    """Credentials from lower-cased headers; None when none were presented.

    Raises ``InvalidKey`` for anything malformed, including a bad checksum.
    """
    auth = headers.get("authorization")
    if auth is not None:
        scheme, _, value = auth.strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer":
            value = value.strip()
            # An OAuth access token in the same header (CONTRACT §8): told apart here, in
            # the one parse of Authorization, and verified by the token verifier.
            return AccessToken(value) if looks_like_jwt(value) else _from_key(value)
        if scheme == "apikey":
            key_id, sep, secret = _b64(value).partition(":")
            if not sep:
                raise InvalidKey()
            parsed = check_pair(key_id, secret)
            return Credentials(parsed.id, parsed.secret)
        # Another scheme (e.g. Basic for the upstream) is not ours: look at the key headers.
    secret_header = headers.get("x-api-secret")
    api_key = headers.get("x-api-key")
    if secret_header is not None:
        if api_key is None:
            raise InvalidKey()
        parsed = check_pair(_b64(api_key), _b64(secret_header))
        return Credentials(parsed.id, parsed.secret)
    if api_key is None:
        api_key = headers.get("api-key")
    if api_key is None:
        return None
    return from_key_or_id(api_key)


@dataclass(frozen=True, slots=True)
class KeyAndToken:
    """What a request presents when it may carry an API key and an access token at once."""

    key: Credentials | None
    token: AccessToken | None


def extract_key_and_token(headers: Mapping[str, str]) -> KeyAndToken:
    """The key and the access token of lower-cased headers, each None when absent.

    The token is a JWT in ``Authorization: Bearer``; the key is then read from the other
    headers (``X-API-Key``, ``API-Key``, ``X-API-Secret``), since Authorization holds the
    token. Otherwise the key is what :func:`extract_credentials` reads (a key in
    ``Authorization: Bearer``/``ApiKey`` is still a key). ``InvalidKey`` for anything
    malformed, as there.
    """
    auth = headers.get("authorization")
    if auth is not None:
        scheme, _, value = auth.strip().partition(" ")
        token = value.strip()
        if scheme.lower() == "bearer" and looks_like_jwt(token):
            key = extract_credentials({n: v for n, v in headers.items() if n != "authorization"})
            # (Without Authorization, only a key can come back.)
            return KeyAndToken(key if isinstance(key, Credentials) else None, AccessToken(token))
    presented = extract_credentials(headers)
    if isinstance(presented, AccessToken):
        return KeyAndToken(None, presented)
    return KeyAndToken(presented, None)


def from_key_or_id(text: str) -> Credentials:
    """A full key, or a bare public id (which marks a signed request). No I/O."""
    text = text.strip()
    if looks_like_key_id(text):
        return Credentials(text, None)
    return _from_key(text)
