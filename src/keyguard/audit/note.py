"""C2SP signed notes and transparency-log checkpoints (c2sp.org/signed-note,
c2sp.org/tlog-checkpoint), with Ed25519 signatures.

A checkpoint is the text ``origin\\nsize\\nbase64(root)\\n``; the signed note adds a blank
line and one ``— name base64(key id || signature)`` line per signature. The key id is the
first four bytes of ``SHA-256(name || "\\n" || 0x01 || public key)``. Written here because
the format is a few lines and the Python ports of Go's ``note`` package are not maintained;
the tests check it against the spec's published example.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ED25519 = b"\x01"
DASH = "\u2014"  # the em dash that opens a signature line


class NoteError(ValueError):
    """Not a well-formed signed note or checkpoint."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise NoteError("bad base64") from exc


def valid_name(name: str) -> bool:
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


def key_hash(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + public_key).digest()[:4]


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True, slots=True)
class Verifier:
    """One public key as the ``name+hash+base64`` verifier key string names it."""

    name: str
    public_key: bytes  # the 32 raw bytes

    @property
    def key_id(self) -> bytes:
        return key_hash(self.name, self.public_key)

    def __str__(self) -> str:
        return f"{self.name}+{self.key_id.hex()}+{_b64(ED25519 + self.public_key)}"

    @classmethod
    def parse(cls, text: str) -> Verifier:
        parts = text.strip().split("+", 2)  # the base64 part may hold '+' itself
        if len(parts) != 3 or not valid_name(parts[0]):
            raise NoteError("a verifier key is name+hash+base64")
        raw = _unb64(parts[2])
        if len(raw) != 33 or raw[:1] != ED25519:
            raise NoteError("only Ed25519 verifier keys are supported")
        verifier = cls(parts[0], raw[1:])
        if verifier.key_id.hex() != parts[1].lower():
            raise NoteError("the verifier key's hash does not match its key")
        return verifier

    def verify(self, text: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, text)
        except (InvalidSignature, ValueError):
            return False
        return True


def sign(text: str, name: str, key: Ed25519PrivateKey) -> str:
    """The signed note of ``text`` (which must end with a newline) by one key."""
    if not text.endswith("\n") or not valid_name(name):
        raise NoteError("note text must end with a newline; names have no spaces or '+'")
    signature = key.sign(text.encode())
    stamp = key_hash(name, raw_public(key.public_key())) + signature
    return f"{text}\n{DASH} {name} {_b64(stamp)}\n"


@dataclass(frozen=True, slots=True)
class Signature:
    name: str
    key_id: bytes
    signature: bytes


def split(note: str) -> tuple[str, list[Signature]]:
    """The text and the signature lines of a signed note (nothing is verified here).

    Blank lines after the signatures, or a missing last newline, are what copying a note
    out of JSON (``jq -r``) or an editor leaves: outside the signed text, so forgiven.
    """
    note = note.rstrip("\n") + "\n"
    text, sep, block = note.rpartition("\n\n")
    if not sep or not block.endswith("\n"):
        raise NoteError("a signed note is text, a blank line and signature lines")
    signatures = []
    for line in block[:-1].split("\n"):
        dash, _, rest = line.partition(" ")
        name, _, stamp = rest.partition(" ")
        if dash != DASH or not valid_name(name):
            raise NoteError("malformed signature line")
        raw = _unb64(stamp)
        if len(raw) < 5:
            raise NoteError("signature too short")
        signatures.append(Signature(name, raw[:4], raw[4:]))
    return text + "\n", signatures


def verified_by(note: str, verifiers: list[Verifier]) -> tuple[str, list[Verifier]]:
    """The note's text and which of ``verifiers`` signed it (possibly none)."""
    text, signatures = split(note)
    signed = []
    for verifier in verifiers:
        for sig in signatures:
            if (
                sig.name == verifier.name
                and sig.key_id == verifier.key_id
                and verifier.verify(text.encode(), sig.signature)
            ):
                signed.append(verifier)
                break
    return text, signed


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes

    def text(self) -> str:
        return f"{self.origin}\n{self.size}\n{_b64(self.root)}\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            raise NoteError("a checkpoint is origin, size and root hash, one per line")
        origin, size, root = lines[0], lines[1], lines[2]
        if (
            not origin
            or not size.isascii()
            or not size.isdigit()
            or (size != "0" and size[0] == "0")
        ):
            raise NoteError("the tree size must be a canonical decimal")
        digest = _unb64(root)
        if len(digest) != 32:
            raise NoteError("the root hash must be 32 bytes")
        return cls(origin, int(size), digest)
