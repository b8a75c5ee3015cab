"""Key format: prefix, environment, checksum, and nothing else accepted."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyguard.crypto.keys import (
    ALPHABET,
    RANDOM_CHARS,
    SECRET_CHARS,
    KeyIdTagger,
    check_pair,
    looks_like_key_id,
    parse_key,
)
from keyguard.errors import InvalidKey

TAGS = KeyIdTagger(os.urandom(32))
ISSUED = TAGS.issue("aptr", "live")


def test_issued_key_has_prefix_environment_id_and_secret():
    assert ISSUED.key.startswith("aptr_live_")
    assert ISSUED.key == ISSUED.id + ISSUED.secret
    assert len(ISSUED.secret) == SECRET_CHARS
    assert looks_like_key_id(ISSUED.id)


def test_secret_carries_at_least_256_random_bits():
    import math

    assert RANDOM_CHARS * math.log2(len(ALPHABET)) >= 256


def test_parse_returns_the_id_and_secret():
    parsed = parse_key(ISSUED.key)
    assert (parsed.id, parsed.secret) == (ISSUED.id, ISSUED.secret)


def test_secret_never_appears_in_repr():
    assert ISSUED.secret not in repr(ISSUED)
    assert ISSUED.secret not in repr(parse_key(ISSUED.key))


@pytest.mark.parametrize("position", [0, 5, 12, 30, 60, len(ISSUED.key) - 1])
def test_a_single_mistyped_character_is_refused(position):
    original = ISSUED.key[position]
    replacement = "b" if original != "b" else "c"
    typo = ISSUED.key[:position] + replacement + ISSUED.key[position + 1 :]
    with pytest.raises(InvalidKey):
        parse_key(typo)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "aptr_live_",
        ISSUED.key + "x",
        ISSUED.key[:-1],
        ISSUED.key.upper(),
        " " + ISSUED.key + "\n" + "x",
        ISSUED.key.replace("live", "prod"),
        ISSUED.key.replace("_", "-"),
        "Aptr" + ISSUED.key[4:],
        ISSUED.key[:20] + "\u0661" + ISSUED.key[21:],  # Arabic-Indic digit one
        ISSUED.key[:20] + "\x00" + ISSUED.key[21:],
        "x" * 10_000,
    ],
    ids=[
        "empty",
        "prefix-only",
        "extended",
        "truncated",
        "upper-case",
        "whitespace",
        "unknown-environment",
        "dashes",
        "capitalised-prefix",
        "non-ascii-digit",
        "nul",
        "huge",
    ],
)
def test_malformed_keys_are_refused(text):
    with pytest.raises(InvalidKey):
        parse_key(text)


def test_swapping_secrets_between_keys_is_refused_by_the_checksum():
    other = TAGS.issue("aptr", "live")
    with pytest.raises(InvalidKey):
        check_pair(ISSUED.id, other.secret)


def test_id_and_secret_presented_apart_are_checked_too():
    assert check_pair(ISSUED.id, ISSUED.secret).secret == ISSUED.secret
    with pytest.raises(InvalidKey):
        check_pair(ISSUED.id, ISSUED.secret[:-1] + ("A" if ISSUED.secret[-1] != "A" else "B"))


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=120))
def test_no_random_string_parses_as_a_key(text):
    if text == ISSUED.key:
        return
    try:
        parsed = parse_key(text)
    except InvalidKey:
        return
    # Anything that does parse must be a different, self-consistent key — never ours.
    assert (parsed.id, parsed.secret) != (ISSUED.id, ISSUED.secret)


@settings(max_examples=1000, deadline=None)
@given(st.integers(0, len(ISSUED.key) - 1), st.sampled_from(ALPHABET + "_-"))
def test_no_single_character_change_of_a_key_is_accepted(position, char):
    mutated = ISSUED.key[:position] + char + ISSUED.key[position + 1 :]
    if mutated == ISSUED.key:
        return
    try:
        parsed = parse_key(mutated)
    except InvalidKey:
        return
    # CRC32 detects every single-character change inside the checksummed part.
    assert parsed.id != ISSUED.id or parsed.secret != ISSUED.secret
    raise AssertionError(f"single-character change accepted at {position}")
