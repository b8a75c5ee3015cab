"""The four presentation forms of CONTRACT §4, parsed without I/O."""

from __future__ import annotations

import base64

import pytest

from keyguard.crypto.keys import KeyIdTagger
from keyguard.engine.credentials import extract_credentials
from keyguard.errors import InvalidKey

K = KeyIdTagger(bytes(32)).issue("aptr", "live")
BAD_LAST = "A" if K.secret[-1] != "A" else "B"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "headers",
    [
        {"authorization": f"Bearer {K.key}"},
        {"authorization": f"bearer   {K.key}"},
        {"api-key": K.key},
        {"x-api-key": K.key},
        {"x-api-key": b64(K.id), "x-api-secret": b64(K.secret)},
        {"authorization": f"ApiKey {b64(K.id + ':' + K.secret)}"},
    ],
)
def test_every_presentation_form_yields_the_same_credentials(headers):
    creds = extract_credentials(headers)
    assert creds is not None
    assert (creds.key_id, creds.secret) == (K.id, K.secret)


def test_a_bare_id_marks_a_signed_request():
    creds = extract_credentials({"x-api-key": K.id})
    assert creds is not None
    assert (creds.key_id, creds.secret) == (K.id, None)


def test_no_credentials_is_none():
    assert extract_credentials({}) is None
    assert extract_credentials({"authorization": "Basic dXNlcjpwYXNz"}) is None


@pytest.mark.parametrize(
    "headers",
    [
        {"authorization": "Bearer "},
        {"authorization": f"Bearer {K.key}x"},
        {"authorization": f"Bearer {K.key},{K.key}"},  # duplicated header, joined by the door
        {"authorization": "ApiKey not-base64!!"},
        {"authorization": f"ApiKey {b64(K.id + K.secret)}"},  # no colon
        {"authorization": f"ApiKey {b64(K.id + ':' + K.secret[:-1] + BAD_LAST)}"},  # checksum
        {"x-api-key": b64(K.id), "x-api-secret": "%%%"},
        {"x-api-secret": b64(K.secret)},
        {"x-api-key": "aptr_live_short"},
        {"x-api-key": "A" * 10_000, "x-api-secret": "B" * 10_000},
    ],
)
def test_malformed_credentials_are_invalid_key(headers):
    with pytest.raises(InvalidKey):
        extract_credentials(headers)
