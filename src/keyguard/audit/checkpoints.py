"""Signed checkpoints of the audit log, their signing keys, and checking a kept checkpoint
against the log (CONTRACT §10).

A checkpoint commits to the first ``size`` events through the Merkle root. A user keeps
one outside the database (from ``GET /v1/audit/checkpoint`` or an ``audit.checkpoint``
webhook); later the log must still *extend* it: at least that many events, whose first
``size`` still hash to that root. Events removed from the end (with the chain's head
rewritten to match), a rewritten event, or an older backup restored all fail that, which
the hash chain alone cannot see.

The signing key is Ed25519, generated on first use, its private half sealed with the
master key (AES-GCM, bound to the key's id). Rotating retires it; retired public keys stay
published so old checkpoints can still be verified.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from keyguard.audit import merkle, tree
from keyguard.audit import service as audit
from keyguard.audit.models import AuditCheckpoint, AuditHead, AuditSigningKey
from keyguard.audit.note import (
    Checkpoint,
    NoteError,
    Verifier,
    raw_public,
    sign,
    split,
    verified_by,
)
from keyguard.clock import utc_from_ts
from keyguard.context import ServiceContext


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    checkpoint: Checkpoint
    note: str
    key_id: str


@dataclass(frozen=True, slots=True)
class PublicKey:
    verifier: Verifier
    created_at: datetime
    retired_at: datetime | None

    @property
    def key_id(self) -> str:
        return self.verifier.key_id.hex()


def default_origin(ctx: ServiceContext) -> str:
    """``host[:port]/keyguard/audit`` of the public URL, unless KEYGUARD_AUDIT_ORIGIN says."""
    if ctx.settings.audit_origin:
        return ctx.settings.audit_origin
    return f"{urlsplit(ctx.settings.public_base_url).netloc}/keyguard/audit"


def _context(key_id: str) -> str:
    return f"audit-signing:{key_id}"


def _verifier(row: AuditSigningKey) -> Verifier:
    return Verifier(row.name, base64.b64decode(row.public_key))


def _open_private(ctx: ServiceContext, row: AuditSigningKey) -> Ed25519PrivateKey:
    raw = base64.b64decode(ctx.envelope.open(row.private_sealed, context=_context(row.id)))
    return Ed25519PrivateKey.from_private_bytes(raw)


def _new_key_row(ctx: ServiceContext, name: str) -> AuditSigningKey:
    private = Ed25519PrivateKey.generate()
    public = raw_public(private.public_key())
    verifier = Verifier(name, public)
    key_id = verifier.key_id.hex()
    seed = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return AuditSigningKey(
        id=key_id,
        name=name,
        public_key=base64.b64encode(public).decode(),
        private_sealed=ctx.envelope.seal(base64.b64encode(seed).decode(), context=_context(key_id)),
        created_at=utc_from_ts(ctx.clock.now()),
        retired_at=None,
    )


async def _current_key(session: AsyncSession) -> AuditSigningKey | None:
    return (
        await session.execute(
            select(AuditSigningKey)
            .where(AuditSigningKey.retired_at.is_(None))
            .order_by(AuditSigningKey.created_at.desc())
            .limit(1)
        )
    ).scalar_one_or_none()


async def _locked_head(session: AsyncSession) -> AuditHead:
    head = (
        await session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update())
    ).scalar_one()
    return head


async def _set_up(ctx: ServiceContext) -> None:
    """The log's origin and first signing key, once, under the head's lock (so two
    instances starting together agree on both)."""
    async with ctx.transaction() as session:
        head = await _locked_head(session)
        if head.origin is None:
            head.origin = default_origin(ctx)
        if await _current_key(session) is None:
            session.add(_new_key_row(ctx, head.origin))


async def sign_current(ctx: ServiceContext) -> SignedCheckpoint:
    """A checkpoint of the whole log as it is now, signed by the current key."""
    async with ctx.sessions() as session:
        head = (await session.execute(select(AuditHead).where(AuditHead.id == 1))).scalar_one()
        key = await _current_key(session)
    if head.origin is None or key is None:
        await _set_up(ctx)
        return await sign_current(ctx)
    checkpoint = Checkpoint(head.origin, head.seq, tree.frontier_root(head.frontier or []))
    note = sign(checkpoint.text(), key.name, _open_private(ctx, key))
    return SignedCheckpoint(checkpoint, note, key.id)


async def public_keys(ctx: ServiceContext) -> list[PublicKey]:
    """Every signing key ever used, oldest first; the last one signs from now on."""
    async with ctx.sessions() as session:
        rows = list(
            (
                await session.execute(select(AuditSigningKey).order_by(AuditSigningKey.created_at))
            ).scalars()
        )
    if not rows:
        await _set_up(ctx)
        return await public_keys(ctx)
    return [PublicKey(_verifier(r), r.created_at, r.retired_at) for r in rows]


async def rotate_key(ctx: ServiceContext, *, actor: str) -> PublicKey:
    """Retire the current signing key and make a new one; audited."""
    async with ctx.transaction() as session:
        head = await _locked_head(session)
        if head.origin is None:
            head.origin = default_origin(ctx)
        now = utc_from_ts(ctx.clock.now())
        old = await _current_key(session)
        if old is not None:
            old.retired_at = now
        row = _new_key_row(ctx, head.origin)
        if old is not None and row.id == old.id:  # a 32-bit key id collision: draw again
            row = _new_key_row(ctx, head.origin)
        session.add(row)
        await session.flush()
        await audit.record(
            session,
            at=now,
            actor=actor,
            action="audit.signing_key_rotated",
            target=row.id,
            data={"previous": old.id if old is not None else None},
        )
    return PublicKey(_verifier(row), row.created_at, None)


async def tree_size(ctx: ServiceContext) -> int:
    async with ctx.sessions() as session:
        return int(
            (await session.execute(select(AuditHead.seq).where(AuditHead.id == 1))).scalar_one()
        )


async def inclusion_proof(
    ctx: ServiceContext, index: int, size: int
) -> tuple[bytes, bytes, list[bytes]]:
    """(leaf hash, root at ``size``, path) for leaf ``index`` (0-based)."""
    async with ctx.sessions() as session:
        leaf, path = await tree.inclusion(session, index, size)
        root = await tree.root_at(session, size)
    return leaf, root, path


async def consistency_proof(
    ctx: ServiceContext, first: int, second: int
) -> tuple[bytes, bytes, list[bytes]]:
    """(root at ``first``, root at ``second``, proof)."""
    async with ctx.sessions() as session:
        proof = await tree.consistency(session, first, second)
        first_root = await tree.root_at(session, first)
        second_root = await tree.root_at(session, second)
    return first_root, second_root, proof


async def claim_publication(session: AsyncSession, signed: SignedCheckpoint, at: datetime) -> bool:
    """Record that this checkpoint goes out; False when an instance already sent this size."""
    if await session.get(AuditCheckpoint, signed.checkpoint.size) is not None:
        return False
    try:
        async with session.begin_nested():
            session.add(
                AuditCheckpoint(
                    size=signed.checkpoint.size,
                    root_hash=signed.checkpoint.root.hex(),
                    note=signed.note,
                    key_id=signed.key_id,
                    at=at,
                )
            )
    except IntegrityError:
        return False
    return True


# ---- checking a kept checkpoint against the log (keyguard audit verify --checkpoint) ----


class CheckpointMismatch(Exception):
    """The log does not extend the checkpoint, or the checkpoint is not to be trusted."""


@dataclass(frozen=True, slots=True)
class Extension:
    checkpoint: Checkpoint
    signed_by: Verifier
    log_size: int


async def verify_extends(
    session: AsyncSession, note_text: str, *, trusted: Sequence[Verifier] | None = None
) -> Extension:
    """Check that the log in the database extends the checkpoint ``note_text``.

    The signature is checked against ``trusted`` keys when given (a verifier key kept
    with the checkpoint), else against every key the database publishes. The roots are
    recomputed from the events themselves, never taken from the stored tree, and the
    stored tree must agree with them.
    """
    try:
        text, _ = split(note_text)
        checkpoint = Checkpoint.parse(text)
    except NoteError as exc:
        raise CheckpointMismatch(f"not a checkpoint: {exc}") from exc
    head = (await session.execute(select(AuditHead).where(AuditHead.id == 1))).scalar_one()
    if head.origin is not None and checkpoint.origin != head.origin:
        raise CheckpointMismatch(
            f"the checkpoint is for the log {checkpoint.origin!r}, this one is {head.origin!r}"
        )
    if trusted is None:
        rows = (await session.execute(select(AuditSigningKey))).scalars()
        trusted = [_verifier(r) for r in rows]
    _, signers = verified_by(note_text, list(trusted))
    if not signers:
        raise CheckpointMismatch("the checkpoint's signature does not verify with any trusted key")

    stack: list[bytes] = []
    size, root_at_checkpoint = 0, merkle.EMPTY_ROOT if checkpoint.size == 0 else None
    # The tree needs no secret: anyone holding the events can recompute it.
    expected: list[tuple[int, int, bytes]] = []  # the tree's nodes as the events imply
    # Only the events the head counted when we read it: the log may grow while we check.
    async for event in audit.events_through(session, upto=head.seq):
        if event.seq != size + 1:
            raise CheckpointMismatch(f"event {size + 1} is missing (next is {event.seq})")
        body = audit.canonical(
            event.seq,
            event.at,
            event.project_id,
            event.actor,
            event.action,
            event.target,
            event.data,
        )
        expected.extend(merkle.compact_append(stack, size, merkle.leaf_hash(body)))
        if len(expected) >= 4000:
            await _compare_stored(session, expected)
            expected.clear()
        size += 1
        if size == checkpoint.size:
            root_at_checkpoint = merkle.compact_root(stack)
    if size < checkpoint.size:
        raise CheckpointMismatch(
            f"the log has {size} events but the checkpoint commits to {checkpoint.size}: "
            "events were removed from the end, or an older backup was restored"
        )
    if root_at_checkpoint != checkpoint.root:
        raise CheckpointMismatch(
            f"the first {checkpoint.size} events no longer hash to the checkpoint's root: "
            "the log was rewritten"
        )
    await _compare_stored(session, expected)
    if head.seq != size or tree.frontier_root(head.frontier or []) != merkle.compact_root(stack):
        raise CheckpointMismatch("the stored Merkle tree does not match the events")
    return Extension(checkpoint, signers[0], size)


async def _compare_stored(session: AsyncSession, expected: list[tuple[int, int, bytes]]) -> None:
    """Every node the events imply is stored, with that hash (proofs are served from them)."""
    stored = await tree.stored_nodes(session, [(lv, ix) for lv, ix, _ in expected])
    for level, index, digest in expected:
        if stored.get((level, index)) != digest:
            raise CheckpointMismatch(
                f"the stored Merkle tree does not match the events (node {level}/{index})"
            )
