"""The audit log's rows: events and the single chain head."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Integer,
    SmallInteger,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from keyguard.storage.base import Base
from keyguard.storage.reseal import SealedColumn


class AuditEvent(Base):
    """Append-only, hash-chained (``hash = HMAC(chain key, prev_hash || canonical(event))``)
    and a leaf of the Merkle tree (its leaf is ``canonical(event)``)."""

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    at: Mapped[datetime]
    project_id: Mapped[str | None] = mapped_column(String(40), index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    target: Mapped[str | None] = mapped_column(String(200))
    data: Mapped[dict[str, Any]]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditHead(Base):
    """One row; updating it inside the appending transaction serialises writers."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    # The Merkle tree's compact range: hex roots of the perfect subtrees that make up the
    # first ``seq`` leaves, largest first (one per set bit of ``seq``).
    frontier: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The log's name in its checkpoints, fixed by the first checkpoint ever signed.
    origin: Mapped[str | None] = mapped_column(String(200))


class AuditTreeNode(Base):
    """Every perfect subtree of the Merkle tree, stored as it completes (about two rows per
    event), so any root or proof is a handful of look-ups instead of rehashing the log.
    Level 0 holds the leaf hashes; node ``(level, idx)`` covers events
    ``idx * 2**level + 1 .. (idx + 1) * 2**level``."""

    __tablename__ = "audit_tree_nodes"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hash: Mapped[str] = mapped_column(String(64))


class AuditSigningKey(Base):
    """Ed25519 keys that sign checkpoints. The private half is sealed with the master key;
    retired keys stay so that old checkpoints can still be checked."""

    __tablename__ = "audit_signing_keys"

    id: Mapped[str] = mapped_column(String(8), primary_key=True)  # the note key hash, hex
    name: Mapped[str] = mapped_column(String(200))
    public_key: Mapped[str] = mapped_column(String(64))  # base64 of the 32 raw bytes
    private_sealed: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    retired_at: Mapped[datetime | None]


class AuditCheckpoint(Base):
    """Checkpoints sent out as ``audit.checkpoint`` events; the primary key makes the first
    instance to publish a size the only one."""

    __tablename__ = "audit_checkpoints"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    root_hash: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text)
    key_id: Mapped[str] = mapped_column(String(8))
    at: Mapped[datetime]


# Values sealed with the master key (re-sealed by ``keyguard master-key rotate``).
SEALED = (SealedColumn(AuditSigningKey, "private_sealed", lambda row: f"audit-signing:{row.id}"),)
