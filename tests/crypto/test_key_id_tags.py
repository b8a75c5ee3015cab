"""The keyed tag of key ids (issue 10, defect 7): issued ids carry it, a forged one fails,
and ids issued before the tag are admitted only when they are known to exist."""

from __future__ import annotations

import os
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import issue_legacy_key
from keyguard.crypto.keys import (
    ALPHABET,
    ROOT_PREFIX,
    TAG_CHARS,
    KeyIdTagger,
    check_pair,
    looks_like_key_id,
    new_secret_for,
    parse_key,
)
from keyguard.errors import InvalidKey

SUBKEY = os.urandom(32)
TAGS = KeyIdTagger(SUBKEY)
PREFIXES = st.sampled_from(["aptr", "pay", "a", "abcdefghijklmnop", ROOT_PREFIX])
ENVIRONMENTS = st.sampled_from(["live", "test"])


@given(PREFIXES, ENVIRONMENTS)
def test_issued_ids_carry_a_valid_tag_and_parse(prefix, environment):
    issued = TAGS.issue(prefix, environment)
    assert issued.id.startswith(f"{prefix}_{environment}_")
    assert len(issued.id.split("_", 2)[2]) == 18
    assert TAGS.admits(issued.id)
    assert looks_like_key_id(issued.id)
    assert parse_key(issued.key) == check_pair(issued.id, issued.secret)
    assert parse_key(issued.key).id == issued.id


@given(PREFIXES, ENVIRONMENTS, st.integers(0, TAG_CHARS - 1), st.sampled_from(ALPHABET))
def test_changing_any_tag_character_fails(prefix, environment, position, char):
    key_id = TAGS.new_id(prefix, environment)
    at = len(key_id) - TAG_CHARS + position
    forged = key_id[:at] + char + key_id[at + 1 :]
    if forged == key_id:
        return
    assert not TAGS.admits(forged)
    # ... while its public checksum can be made right by anyone: the tag is what refuses it.
    assert parse_key(forged + new_secret_for(forged)).id == forged


@given(PREFIXES, st.data())
def test_the_tag_covers_prefix_environment_and_random_part(prefix, data):
    key_id = TAGS.new_id(prefix, "live")
    stem = key_id[: -TAG_CHARS - 12]
    random_part = key_id[-TAG_CHARS - 12 : -TAG_CHARS]
    position = data.draw(st.integers(0, len(random_part) - 1))
    # Another character by a drawn offset (a filter on the random id would make the
    # strategy depend on state hypothesis cannot replay).
    offset = data.draw(st.integers(1, len(ALPHABET) - 1))
    char = ALPHABET[(ALPHABET.index(random_part[position]) + offset) % len(ALPHABET)]
    changed = random_part[:position] + char + random_part[position + 1 :]
    assert not TAGS.admits(stem + changed + key_id[-TAG_CHARS:])
    assert not TAGS.admits(key_id.replace("_live_", "_test_", 1))
    other_prefix = "zz" if prefix != "zz" else "yy"
    assert not TAGS.admits(other_prefix + key_id[len(prefix) :])


def test_another_subkey_refuses_the_ids_of_this_one():
    issued = TAGS.issue("aptr", "live")
    assert not KeyIdTagger(os.urandom(32)).admits(issued.id)


def test_ids_without_a_tag_are_admitted_only_when_known():
    known = issue_legacy_key("aptr", "live")
    stranger = issue_legacy_key("aptr", "live")
    tags = KeyIdTagger(SUBKEY, legacy_ids=[known.id])
    assert tags.admits(known.id)
    assert not tags.admits(stranger.id)
    assert not TAGS.admits(known.id)
    # Both shapes still parse (the format check knows nothing of the tag).
    for issued in (known, stranger):
        assert looks_like_key_id(issued.id)
        assert parse_key(issued.key).id == issued.id
        assert check_pair(issued.id, issued.secret).id == issued.id


def test_only_ids_of_the_old_shape_are_taken_as_legacy_ids():
    tagged = TAGS.new_id("aptr", "live")
    tags = KeyIdTagger(os.urandom(32), legacy_ids=[tagged, "junk", "aptr_live_short"])
    assert not tags.admits(tagged)
    assert not tags.admits("junk")
    assert not tags.admits("aptr_live_short")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "aptr_live_",
        "aptr_live_" + "A" * 17,  # between the two lengths
        "aptr_live_" + "A" * 19,
        "aptr_prod_" + "A" * 18,
        "aptr_live_" + "A" * 17 + "\u0661",
        "aptr_live_" + "A" * 17 + "\x00",
        "Aptr_live_" + "A" * 18,
        "x" * 10_000,
    ],
)
def test_malformed_ids_are_not_admitted(text):
    assert not TAGS.admits(text)
    assert not KeyIdTagger(SUBKEY, legacy_ids=[text]).admits(text)


def test_the_subkey_never_appears_in_repr():
    assert repr(TAGS) == "KeyIdTagger(<redacted>)"
    assert SUBKEY.hex() not in repr(TAGS)


def test_a_short_subkey_is_refused():
    with pytest.raises(ValueError, match="32 bytes"):
        KeyIdTagger(b"short")


def test_invalid_prefix_or_environment_is_refused():
    with pytest.raises(ValueError, match="invalid key prefix"):
        TAGS.new_id("Aptr", "live")
    with pytest.raises(ValueError, match="invalid key prefix"):
        TAGS.issue("aptr", "prod")


@pytest.mark.parametrize("shape", ["tagged", "legacy"])
def test_a_forged_key_of_either_shape_fails_closed(shape):
    issued = TAGS.issue("aptr", "live") if shape == "tagged" else issue_legacy_key("aptr", "live")
    forged = issued.id[:-1] + ("A" if issued.id[-1] != "A" else "B")
    # The public checksum is right (anyone can compute it) ...
    parse_key(forged + new_secret_for(forged))
    # ... the tag (or the list of ids that existed before the tag) is not.
    assert not TAGS.admits(forged)
    with pytest.raises(InvalidKey):
        parse_key(forged + issued.secret)  # and the old secret no longer matches its CRC


def test_the_documented_scanner_regex_finds_both_id_lengths():
    """docs/api-keys.md gives secret scanners one regex for every key Keyguard issued."""
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "api-keys.md").read_text()
    found = re.search(r"^(\\b\(\[a-z\].*\\b)$", doc, re.MULTILINE)
    assert found is not None, "the scanner regex is no longer in docs/api-keys.md"
    scanner = re.compile(found[1])
    for issued in (TAGS.issue("aptr", "live"), issue_legacy_key("kgroot", "live")):
        match = scanner.search(f"token = '{issued.key}'\n")
        assert match is not None
        assert (match[1], match[2] + match[3]) == (issued.id, issued.secret)
