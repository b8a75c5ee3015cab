"""Create the audit chain's head row up front.

Appends lock this row (``SELECT … FOR UPDATE``) to serialise writers. If it had to be
created by the first append, two concurrent first appends on PostgreSQL would both see
no row and both insert one (a unique violation); created here, it always exists to lock.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "INSERT INTO audit_head (id, seq, hash) SELECT 1, 0, '"
        + "0" * 64
        + "' WHERE NOT EXISTS (SELECT 1 FROM audit_head WHERE id = 1)"
    )


def downgrade() -> None:
    op.execute("DELETE FROM audit_head WHERE id = 1 AND seq = 0")
