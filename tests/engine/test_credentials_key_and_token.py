"""A request may present an API key and an access token at once (seed 002): both are read,
each from where it can be, without I/O."""

from __future__ import annotations

import base64

import pytest

from keyguard.crypto.keys import KeyIdTagger
from keyguard.engine.credentials import extract_credentials, extract_key_and_token
from keyguard.engine.facts import AccessToken, Credentials
from keyguard.errors import InvalidKey

K = KeyIdTagger(bytes(32)).issue("aptr", "live")
JWT = "eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiJ1MSJ9.c2ln"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


KEY_HEADERS = [
    {"api-key": K.key},
    {"x-api-key": K.key},
    {"x-api-key": b64(K.id), "x-api-secret": b64(K.secret)},
]


@pytest.mark.parametrize("key_headers", KEY_HEADERS)
def test_a_key_header_beside_a_bearer_token_gives_both(key_headers: dict[str, str]) -> None:
    found = extract_key_and_token({**key_headers, "authorization": f"Bearer {JWT}"})
    assert found.token == AccessToken(JWT)
    assert found.key == Credentials(K.id, K.secret)


@pytest.mark.parametrize(
    "headers",
    [
        *KEY_HEADERS,
        {"authorization": f"Bearer {K.key}"},
        {"authorization": f"ApiKey {b64(K.id + ':' + K.secret)}"},
        {"authorization": "Basic dXNlcjpwYXNz", "x-api-key": K.key},
    ],
)
def test_a_key_alone_is_a_key_wherever_it_is(headers: dict[str, str]) -> None:
    found = extract_key_and_token(headers)
    assert (found.key, found.token) == (Credentials(K.id, K.secret), None)
    assert found.key == extract_credentials(headers)  # the same reading as every door's


def test_a_token_alone_is_a_token() -> None:
    found = extract_key_and_token({"authorization": f"bearer  {JWT} "})
    assert (found.key, found.token) == (None, AccessToken(JWT))


def test_a_bare_key_id_beside_a_token_is_a_signed_requests_key() -> None:
    found = extract_key_and_token({"x-api-key": K.id, "authorization": f"Bearer {JWT}"})
    assert found.key == Credentials(K.id, None)


def test_nothing_is_nothing() -> None:
    found = extract_key_and_token({"authorization": "Basic dXNlcjpwYXNz", "cookie": "a=b"})
    assert (found.key, found.token) == (None, None)


@pytest.mark.parametrize(
    "headers",
    [
        {"authorization": f"Bearer {JWT}", "x-api-key": "aptr_live_short"},
        {"authorization": f"Bearer {JWT}", "x-api-secret": b64(K.secret)},
        {"authorization": f"Bearer {K.key}x"},
    ],
)
def test_a_malformed_key_is_refused_even_beside_a_token(headers: dict[str, str]) -> None:
    with pytest.raises(InvalidKey):
        extract_key_and_token(headers)


def test_neither_credential_shows_in_repr() -> None:
    found = extract_key_and_token({"x-api-key": K.key, "authorization": f"Bearer {JWT}"})
    assert K.secret not in repr(found)
    assert JWT not in repr(found)
