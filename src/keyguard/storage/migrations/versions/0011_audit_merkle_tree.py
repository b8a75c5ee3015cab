"""audit log as a Merkle tree: stored perfect subtrees, the head's compact range and origin,
checkpoint signing keys, published checkpoints

Revision ID: 0011
Revises: 0010

Existing events become the tree's first leaves here, in order, hashed in Python (the leaf
is the event's canonical JSON, which only Python computes).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import keyguard.storage.types
from keyguard.audit.merkle import leaf_hash
from keyguard.audit.service import canonical
from keyguard.audit.tree import extend

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_events = sa.table(
    "audit_events",
    sa.column("seq", sa.BigInteger),
    sa.column("at", keyguard.storage.types.UTCDateTime(timezone=True)),
    sa.column("project_id", sa.String),
    sa.column("actor", sa.String),
    sa.column("action", sa.String),
    sa.column("target", sa.String),
    sa.column("data", sa.JSON),
)
_head = sa.table("audit_head", sa.column("id", sa.Integer), sa.column("frontier", sa.JSON))
_nodes = sa.table(
    "audit_tree_nodes",
    sa.column("level", sa.SmallInteger),
    sa.column("idx", sa.BigInteger),
    sa.column("hash", sa.String),
)


def upgrade() -> None:
    op.create_table(
        "audit_tree_nodes",
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("idx", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx"),
    )
    op.create_table(
        "audit_signing_keys",
        sa.Column("id", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("private_sealed", sa.Text(), nullable=False),
        sa.Column("created_at", keyguard.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("retired_at", keyguard.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root_hash", sa.String(length=64), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("key_id", sa.String(length=8), nullable=False),
        sa.Column("at", keyguard.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("size"),
    )
    with op.batch_alter_table("audit_head") as batch:
        batch.add_column(sa.Column("frontier", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("origin", sa.String(length=200), nullable=True))

    conn = op.get_bind()
    frontier: list[str] = []
    size, after = 0, 0
    while True:
        rows = conn.execute(
            sa.select(_events).where(_events.c.seq > after).order_by(_events.c.seq).limit(1000)
        ).all()
        if not rows:
            break
        batch_nodes = []
        for ev in rows:
            body = canonical(ev.seq, ev.at, ev.project_id, ev.actor, ev.action, ev.target, ev.data)
            frontier, nodes = extend(frontier, size, leaf_hash(body))
            batch_nodes += [{"level": n.level, "idx": n.idx, "hash": n.hash} for n in nodes]
            size, after = size + 1, ev.seq
        conn.execute(sa.insert(_nodes), batch_nodes)
    conn.execute(sa.update(_head).where(_head.c.id == 1).values(frontier=frontier))


def downgrade() -> None:
    with op.batch_alter_table("audit_head") as batch:
        batch.drop_column("origin")
        batch.drop_column("frontier")
    op.drop_table("audit_checkpoints")
    op.drop_table("audit_signing_keys")
    op.drop_table("audit_tree_nodes")
