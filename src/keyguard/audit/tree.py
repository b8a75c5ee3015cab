"""The audit log's Merkle tree in the database: appended with each event, asked for roots
and proofs at any size.

Each event is a leaf (its canonical JSON, the same bytes the hash chain covers). Appending
hashes the leaf and every perfect subtree it completes (amortised two rows per event) and
keeps the *compact range* of the current tree in the head row, so the current root costs
no query at all and any older root or proof is one query for ``O(log² n)`` stored nodes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from keyguard.audit import merkle
from keyguard.audit.models import AuditHead, AuditTreeNode


def extend(
    frontier: Sequence[str], size: int, leaf: bytes
) -> tuple[list[str], list[AuditTreeNode]]:
    """Add leaf number ``size`` (0-based) to the tree whose compact range is ``frontier``
    (hex): the new range and the rows of the perfect subtrees completed on the way."""
    stack = [bytes.fromhex(h) for h in frontier]
    completed = merkle.compact_append(stack, size, leaf)
    nodes = [AuditTreeNode(level=lv, idx=ix, hash=h.hex()) for lv, ix, h in completed]
    return [h.hex() for h in stack], nodes


def frontier_root(frontier: Sequence[str]) -> bytes:
    return merkle.compact_root([bytes.fromhex(h) for h in frontier])


def append(head: AuditHead, size: int, leaf_data: bytes) -> list[AuditTreeNode]:
    """Append one leaf to the tree of ``size`` leaves the (locked) head describes."""
    if len(head.frontier or []) != size.bit_count():
        # An instance that predates the tree appended without it: writing on would store
        # wrong nodes for good. Refuse the write (and its change) instead.
        raise RuntimeError("the audit tree is out of step with the log: run one version only")
    frontier, nodes = extend(head.frontier or [], size, merkle.leaf_hash(leaf_data))
    head.frontier = frontier
    return nodes


async def stored_nodes(
    session: AsyncSession, wanted: Iterable[tuple[int, int]]
) -> dict[tuple[int, int], bytes]:
    keys = sorted(set(wanted))
    found: dict[tuple[int, int], bytes] = {}
    for i in range(0, len(keys), 500):  # bounded IN lists
        chunk = keys[i : i + 500]
        rows = await session.execute(
            select(AuditTreeNode.level, AuditTreeNode.idx, AuditTreeNode.hash).where(
                tuple_(AuditTreeNode.level, AuditTreeNode.idx).in_(chunk)
            )
        )
        found.update({(lv, ix): bytes.fromhex(h) for lv, ix, h in rows})
    return found


class MissingNode(LookupError):
    """The stored tree lacks a node it must have: the table was damaged."""


async def range_hash(session: AsyncSession, ranges: Iterable[tuple[int, int]]) -> merkle.RangeHash:
    """A ``RangeHash`` answering the given ranges (and their sub-ranges) from stored nodes.

    The perfect subtrees the ranges split into are found first, then read in one query.
    """
    needed: list[tuple[int, int]] = []

    def record(level: int, index: int) -> bytes:
        needed.append((level, index))
        return b""

    probe = merkle.range_hash_from(record)
    for start, end in ranges:
        probe(start, end)
    found = await stored_nodes(session, needed)

    def lookup(level: int, index: int) -> bytes:
        try:
            return found[(level, index)]
        except KeyError:
            raise MissingNode(f"audit tree node {level}/{index} is missing") from None

    return merkle.range_hash_from(lookup)


class _Recorder:
    """Runs a proof generator once with placeholder hashes to learn which ranges it needs."""

    def __init__(self) -> None:
        self.ranges: list[tuple[int, int]] = []

    def __call__(self, start: int, end: int) -> bytes:
        self.ranges.append((start, end))
        return b""


async def root_at(session: AsyncSession, size: int) -> bytes:
    return (await range_hash(session, [(0, size)]))(0, size)


async def inclusion(session: AsyncSession, index: int, size: int) -> tuple[bytes, list[bytes]]:
    """(leaf hash, audit path) of leaf ``index`` (0-based) in the tree of ``size`` leaves."""
    recorder = _Recorder()
    merkle.inclusion_path(index, size, recorder)
    mth = await range_hash(session, [*recorder.ranges, (index, index + 1)])
    return mth(index, index + 1), merkle.inclusion_path(index, size, mth)


async def consistency(session: AsyncSession, first: int, second: int) -> list[bytes]:
    recorder = _Recorder()
    merkle.consistency_proof(first, second, recorder)
    mth = await range_hash(session, recorder.ranges)
    return merkle.consistency_proof(first, second, mth)
