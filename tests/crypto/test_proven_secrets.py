"""The fast path for secrets already seen to match never accepts anything HMAC would refuse."""

from __future__ import annotations

import os

from keyguard.crypto.hashing import ProvenSecrets, SecretHasher

PEPPER = os.urandom(32)


def test_a_secret_matches_again_and_a_wrong_one_never_does():
    hasher = SecretHasher(PEPPER)
    proven = ProvenSecrets(hasher)
    stored = hasher.hash("right-secret")
    assert proven.matches("right-secret", stored)
    assert proven.matches("right-secret", stored)  # from what it remembered
    assert not proven.matches("wrong-secret", stored)
    assert not proven.matches("right-secre", stored)
    assert proven.matches("right-secret", stored)


def test_a_wrong_secret_first_is_not_remembered():
    hasher = SecretHasher(PEPPER)
    proven = ProvenSecrets(hasher)
    stored = hasher.hash("right-secret")
    assert not proven.matches("wrong-secret", stored)
    assert not proven.matches("wrong-secret", stored)
    assert proven.matches("right-secret", stored)


def test_a_regenerated_secret_is_not_matched_by_its_predecessor():
    hasher = SecretHasher(PEPPER)
    proven = ProvenSecrets(hasher)
    old, new = hasher.hash("old-secret"), hasher.hash("new-secret")
    assert proven.matches("old-secret", old)
    assert not proven.matches("old-secret", new)
    assert proven.matches("new-secret", new)


def test_unknown_ids_never_match():
    proven = ProvenSecrets(SecretHasher(PEPPER))
    assert not proven.matches("anything", None)


def test_it_forgets_the_oldest_past_its_bound_and_still_checks_correctly():
    hasher = SecretHasher(PEPPER)
    proven = ProvenSecrets(hasher, max_entries=2)
    stored = {name: hasher.hash(name) for name in ("a", "b", "c")}
    for name, digest in stored.items():
        assert proven.matches(name, digest)
    for name, digest in stored.items():
        assert proven.matches(name, digest)
        assert not proven.matches(name + "x", digest)
    assert "2 remembered" in repr(proven)
    assert "a" not in repr(proven).replace("remembered", "")
