"""Merkle tree hashing, inclusion and consistency proofs, as RFC 9162 §2.1 defines them.

Written here because no well-kept Python library implements RFC 9162 proofs (the
Certificate Transparency and Sigstore clients only verify, each inside its own client).
The functions follow the RFC's recursive definitions line by line; the verifiers are the
RFC's iterative algorithms (§2.1.3.2, §2.1.4.2). ``tests/audit/test_merkle.py`` checks
them against a direct transcription of the definitions with hypothesis.

Proof generation never needs the leaves themselves, only the hash of some ranges
``[start, end)`` of them: ``RangeHash``. The audit log answers those from the perfect
subtrees it stores as events are appended (:mod:`keyguard.audit.tree`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()

RangeHash = Callable[[int, int], bytes]  # MTH(D[start:end])


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1): the RFC's ``k``."""
    return 1 << ((n - 1).bit_length() - 1)


def is_perfect(start: int, end: int) -> bool:
    """``[start, end)`` is a whole subtree: a power-of-two size, aligned to it."""
    size = end - start
    return size > 0 and size & (size - 1) == 0 and start % size == 0


def compact_append(stack: list[bytes], size: int, leaf: bytes) -> list[tuple[int, int, bytes]]:
    """Append leaf number ``size`` to the compact range ``stack`` of a ``size``-leaf tree.

    The compact range holds the roots of the perfect subtrees that make up the tree, the
    largest first (one per set bit of ``size``). Returns the perfect subtrees completed,
    as ``(level, index, hash)``: the leaf, then a parent for each trailing one-bit of
    ``size`` (each pairs with the subtree just to its left).
    """
    current, level, index = leaf, 0, size
    completed = [(0, index, leaf)]
    while index & 1:
        current = node_hash(stack.pop(), current)
        level, index = level + 1, index >> 1
        completed.append((level, index, current))
    stack.append(current)
    return completed


def compact_root(stack: Sequence[bytes]) -> bytes:
    """MTH of a whole tree from its compact range."""
    if not stack:
        return EMPTY_ROOT
    root = stack[-1]
    for left in reversed(stack[:-1]):
        root = node_hash(left, root)
    return root


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over already hashed leaves (the definition, recursively)."""
    n = len(leaf_hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hashes[0]
    k = split_point(n)
    return node_hash(root_of(leaf_hashes[:k]), root_of(leaf_hashes[k:]))


def range_hash_from(perfect: Callable[[int, int], bytes]) -> RangeHash:
    """A ``RangeHash`` built from a source of *perfect* subtree hashes only.

    ``perfect(level, index)`` is the hash of leaves ``[index << level, (index + 1) << level)``.
    Any other range is split the way MTH splits it, down to perfect pieces.
    """

    def mth(start: int, end: int) -> bytes:
        if end - start == 0:
            return EMPTY_ROOT
        if is_perfect(start, end):
            level = (end - start).bit_length() - 1
            return perfect(level, start >> level)
        k = split_point(end - start)
        return node_hash(mth(start, start + k), mth(start + k, end))

    return mth


def inclusion_path(index: int, size: int, mth: RangeHash) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 §2.1.3.1: the audit path of leaf ``index`` in ``size``."""
    if not 0 <= index < size:
        raise ValueError("leaf index outside the tree")
    path: list[bytes] = []
    start, end = 0, size
    # Walk down from the root, collecting siblings; the RFC appends them on the way back
    # up, so they are reversed at the end.
    while end - start > 1:
        k = split_point(end - start)
        if index - start < k:
            path.append(mth(start + k, end))
            end = start + k
        else:
            path.append(mth(start, start + k))
            start += k
    path.reverse()
    return path


def consistency_proof(first: int, second: int, mth: RangeHash) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 §2.1.4.1 for 0 < first <= second."""
    if not 0 < first <= second:
        raise ValueError("a consistency proof needs 0 < first <= second")
    proof: list[bytes] = []
    m, start, end, whole = first, 0, second, True
    # SUBPROOF(m, D[start:end], whole), iteratively; nodes collected top-down.
    while True:
        n = end - start
        if m == n:
            if not whole:
                proof.append(mth(start, end))
            break
        k = split_point(n)
        if m <= k:
            proof.append(mth(start + k, end))
            end = start + k
        else:
            proof.append(mth(start, start + k))
            m, start, whole = m - k, start + k, False
    proof.reverse()
    return proof


def root_from_inclusion(index: int, size: int, leaf: bytes, path: Sequence[bytes]) -> bytes | None:
    """RFC 9162 §2.1.3.2: the root a valid path implies, or None when it cannot be one."""
    if not 0 <= index < size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def verify_inclusion(
    index: int, size: int, leaf: bytes, path: Sequence[bytes], root: bytes
) -> bool:
    return root_from_inclusion(index, size, leaf, path) == root


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: does the tree of ``second`` leaves extend the one of ``first``?"""
    if not 0 < first <= second:
        return False
    if first == second:
        return not proof and first_root == second_root
    if not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:  # an exact power of two: the old root is a node of the new
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root
