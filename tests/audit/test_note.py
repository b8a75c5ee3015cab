"""C2SP signed notes and checkpoints, against the Go reference implementation's vector."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from keyguard.audit.note import Checkpoint, NoteError, Verifier, sign, split, verified_by

# golang.org/x/mod/sumdb/note's documented example (note.go, note_test.go).
GO_SIGNER = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VERIFIER = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n\u2014 PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


def go_private_key() -> Ed25519PrivateKey:
    raw = base64.b64decode(GO_SIGNER.split("+", 4)[4])
    return Ed25519PrivateKey.from_private_bytes(raw[1:])


def test_signing_reproduces_the_go_reference_note_byte_for_byte() -> None:
    assert sign(GO_TEXT, "PeterNeumann", go_private_key()) == GO_NOTE


def test_the_go_verifier_key_parses_and_verifies_the_reference_note() -> None:
    verifier = Verifier.parse(GO_VERIFIER)
    assert str(verifier) == GO_VERIFIER
    text, signed = verified_by(GO_NOTE, [verifier])
    assert text == GO_TEXT
    assert signed == [verifier]


def test_an_edited_note_is_not_verified() -> None:
    verifier = Verifier.parse(GO_VERIFIER)
    _, signed = verified_by(GO_NOTE.replace("cryptography", "cryptographY"), [verifier])
    assert signed == []


def test_another_key_of_the_same_name_does_not_verify() -> None:
    other = Ed25519PrivateKey.generate()
    note = sign(GO_TEXT, "PeterNeumann", other)
    assert verified_by(note, [Verifier.parse(GO_VERIFIER)])[1] == []


@pytest.mark.parametrize(
    "bad",
    [
        GO_VERIFIER.replace("c74f20a3", "c74f20a4"),  # hash does not match the key
        GO_VERIFIER.replace("PeterNeumann", "Peter Neumann"),
        "PeterNeumann+c74f20a3",
        GO_VERIFIER[:-4],
    ],
)
def test_malformed_verifier_keys_are_refused(bad: str) -> None:
    with pytest.raises(NoteError):
        Verifier.parse(bad)


@pytest.mark.parametrize(
    "bad",
    [GO_TEXT, GO_NOTE.replace("\u2014", "-"), "\n\n", GO_NOTE.replace(" x08go", " !!")],
)
def test_malformed_notes_are_refused(bad: str) -> None:
    with pytest.raises(NoteError):
        split(bad)


def test_a_checkpoint_round_trips_and_sizes_are_canonical() -> None:
    cp = Checkpoint("example.com/log", 12, bytes(range(32)))
    assert cp.text() == "example.com/log\n12\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
    assert Checkpoint.parse(cp.text()) == cp
    for text in [
        "example.com/log\n012\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
        "example.com/log\n-1\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
        "example.com/log\n12\nAAEC\n",
        "example.com/log\n12\n",
    ]:
        with pytest.raises(NoteError):
            Checkpoint.parse(text)


def test_a_verifier_key_whose_base64_holds_a_plus_parses() -> None:
    # From transparency-dev/formats' note tests: the key's base64 contains '+'.
    plus_key = "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6"
    assert str(Verifier.parse(plus_key)) == plus_key


@pytest.mark.parametrize("copied", [GO_NOTE + "\n", GO_NOTE + "\n\n", GO_NOTE[:-1]])
def test_a_note_copied_with_blank_lines_or_without_its_last_newline_still_verifies(
    copied: str,
) -> None:
    """``jq -r .data.checkpoint > kept.txt`` adds a newline; editors drop or add them."""
    verifier = Verifier.parse(GO_VERIFIER)
    assert verified_by(copied, [verifier]) == (GO_TEXT, [verifier])
