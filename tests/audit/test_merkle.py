"""The RFC 9162 algorithms against a direct transcription of the RFC's definitions."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from keyguard.audit import merkle


# --- RFC 9162 §2.1.1, §2.1.3.1, §2.1.4.1, transcribed as written (over the raw leaves) ---
def mth(d: list[bytes]) -> bytes:
    n = len(d)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + mth(d[:k]) + mth(d[k:])).digest()


def path(m: int, d: list[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*path(m, d[:k]), mth(d[k:])]
    return [*path(m - k, d[k:]), mth(d[:k])]


def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*subproof(m, d[:k], b), mth(d[k:])]
    return [*subproof(m - k, d[k:], False), mth(d[:k])]


def tree_of(leaves: list[bytes]) -> merkle.RangeHash:
    hashed = [merkle.leaf_hash(x) for x in leaves]
    return lambda start, end: merkle.root_of(hashed[start:end])


leaves_st = st.lists(st.binary(max_size=8), min_size=1, max_size=70)


@given(leaves_st)
def test_the_root_is_the_rfcs_mth(leaves: list[bytes]) -> None:
    assert merkle.root_of([merkle.leaf_hash(x) for x in leaves]) == mth(leaves)


def test_the_empty_tree_hashes_the_empty_string() -> None:
    assert merkle.root_of([]) == hashlib.sha256(b"").digest() == mth([])


@given(leaves_st, st.data())
def test_inclusion_paths_are_the_rfcs_and_verify(leaves: list[bytes], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(leaves) - 1))
    proof = merkle.inclusion_path(index, len(leaves), tree_of(leaves))
    assert proof == path(index, leaves)
    leaf = merkle.leaf_hash(leaves[index])
    assert merkle.verify_inclusion(index, len(leaves), leaf, proof, mth(leaves))


@given(leaves_st, st.data())
def test_consistency_proofs_are_the_rfcs_and_verify(
    leaves: list[bytes], data: st.DataObject
) -> None:
    first = data.draw(st.integers(1, len(leaves)))
    proof = merkle.consistency_proof(first, len(leaves), tree_of(leaves))
    assert proof == subproof(first, leaves, True)
    assert merkle.verify_consistency(first, len(leaves), mth(leaves[:first]), mth(leaves), proof)


@given(leaves_st, st.data())
def test_a_tampered_inclusion_proof_fails(leaves: list[bytes], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(leaves) - 1))
    proof = merkle.inclusion_path(index, len(leaves), tree_of(leaves))
    leaf = merkle.leaf_hash(leaves[index])
    root = mth(leaves)
    assert not merkle.verify_inclusion(index, len(leaves), merkle.leaf_hash(b"forged"), proof, root)
    if proof:
        at = data.draw(st.integers(0, len(proof) - 1))
        bad = [*proof[:at], hashlib.sha256(proof[at]).digest(), *proof[at + 1 :]]
        assert not merkle.verify_inclusion(index, len(leaves), leaf, bad, root)
        assert not merkle.verify_inclusion(index, len(leaves), leaf, proof[:-1], root)
    assert not merkle.verify_inclusion(index, len(leaves), leaf, [*proof, root], root)
    assert not merkle.verify_inclusion(len(leaves), len(leaves), leaf, proof, root)


@given(leaves_st, st.data())
def test_a_rewritten_history_is_not_consistent(leaves: list[bytes], data: st.DataObject) -> None:
    """The truncation and rewrite cases of defect 6, in miniature: a log whose first
    ``first`` leaves changed (or that is shorter) cannot prove it extends the old root."""
    first = data.draw(st.integers(1, len(leaves)))
    old_root = mth(leaves[:first])
    at = data.draw(st.integers(0, len(leaves) - 1))
    rewritten = [*leaves[:at], leaves[at] + b"!", *leaves[at + 1 :]]
    proof = merkle.consistency_proof(first, len(rewritten), tree_of(rewritten))
    consistent = merkle.verify_consistency(first, len(rewritten), old_root, mth(rewritten), proof)
    assert consistent == (at >= first)


@given(leaves_st, st.data())
def test_perfect_subtrees_alone_answer_any_range(leaves: list[bytes], data: st.DataObject) -> None:
    hashed = [merkle.leaf_hash(x) for x in leaves]
    asked: list[tuple[int, int]] = []

    def perfect(level: int, index: int) -> bytes:
        asked.append((level, index))
        return merkle.root_of(hashed[index << level : (index + 1) << level])

    start = data.draw(st.integers(0, len(leaves) - 1))
    end = data.draw(st.integers(start + 1, len(leaves)))
    assert merkle.range_hash_from(perfect)(start, end) == mth(leaves[start:end])
    assert all(((i + 1) << lv) <= len(leaves) for lv, i in asked)


def test_the_rfc_rejects_proofs_for_impossible_sizes() -> None:
    leaves = [b"a", b"b", b"c"]
    t = tree_of(leaves)
    assert not merkle.verify_consistency(0, 3, b"", mth(leaves), [])
    assert not merkle.verify_consistency(3, 2, mth(leaves), mth(leaves[:2]), [])
    assert not merkle.verify_consistency(2, 3, mth(leaves[:2]), mth(leaves), [])
    assert merkle.verify_consistency(3, 3, mth(leaves), mth(leaves), [])
    assert merkle.consistency_proof(2, 3, t)
