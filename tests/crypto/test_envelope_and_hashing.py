from __future__ import annotations

import os

import pytest

from keyguard.crypto.envelope import DecryptionError, Envelope
from keyguard.crypto.hashing import SecretHasher, derive_subkey


def test_sealed_secret_opens_only_in_its_context():
    env = Envelope(os.urandom(32))
    sealed = env.seal("JBSWY3DPEHPK3PXP", context="totp:key1")
    assert "JBSWY3DPEHPK3PXP" not in sealed
    assert env.open(sealed, context="totp:key1") == "JBSWY3DPEHPK3PXP"
    with pytest.raises(DecryptionError):
        env.open(sealed, context="totp:key2")


def test_tampered_ciphertext_does_not_open():
    env = Envelope(os.urandom(32))
    sealed = env.seal("secret")
    kid, nonce, ct = sealed.split(".")
    flipped = ct[:-2] + ("A" if ct[-2] != "A" else "B") + ct[-1]
    with pytest.raises(DecryptionError):
        env.open(f"{kid}.{nonce}.{flipped}")


def test_master_key_rotation_keeps_old_ciphertexts_readable():
    old, new = os.urandom(32), os.urandom(32)
    sealed = Envelope(old).seal("s")
    assert Envelope(new, old).open(sealed) == "s"
    with pytest.raises(DecryptionError):
        Envelope(new).open(sealed)


def test_keyed_hash_matches_only_the_right_secret():
    hasher = SecretHasher(derive_subkey(os.urandom(32), "test"))
    stored = hasher.hash("s3cret")
    assert hasher.matches("s3cret", stored)
    assert not hasher.matches("s3cres", stored)
    assert not hasher.matches("s3cret", None)


def test_hash_depends_on_the_pepper():
    a = SecretHasher(derive_subkey(os.urandom(32), "test"))
    b = SecretHasher(derive_subkey(os.urandom(32), "test"))
    assert a.hash("x") != b.hash("x")
    assert "x" not in repr(a)


def test_keys_learnt_while_running_open_new_values_and_unknown_ids_are_asked_rarely():
    """An embedded server learns the key `keyguard master-key rotate --new` wrote into its
    data dir; a value no key opens cannot make every open read the disk."""
    old, new = b"o" * 32, b"n" * 32
    on_disk: list[bytes] = [old]
    asked: list[int] = []

    def more() -> list[bytes]:
        asked.append(1)
        return list(on_disk)

    running = Envelope(old, more=more)
    resealed = Envelope(new, old).seal("s3cret", "ctx")
    on_disk.append(new)
    assert running.open(resealed, "ctx") == "s3cret"
    assert running.seal("x").startswith(running.current_kid + "."), "it still seals as before"
    stranger = Envelope(b"z" * 32).seal("nope", "ctx")
    for _ in range(5):
        with pytest.raises(DecryptionError):
            running.open(stranger, "ctx")
    assert len(asked) == 2, "once for the new key, once for the stranger's"
    assert Envelope(new, old).reseal(resealed, "ctx") is None  # already under the current key
