"""usage: per-key request counts in minute, hour and day buckets; last use per key

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import keyguard.storage.types

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_buckets",
        sa.Column("granularity", sa.String(length=6), nullable=False),
        sa.Column("key_id", sa.String(length=40), nullable=False),
        sa.Column("start", keyguard.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("granularity", "key_id", "start", "code"),
    )
    op.create_index(
        "ix_usage_buckets_project",
        "usage_buckets",
        ["granularity", "project_id", "start", "key_id", "count"],
        unique=False,
    )
    op.create_table(
        "usage_last_use",
        sa.Column("key_id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=True),
        sa.Column(
            "last_used_at", keyguard.storage.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("last_ip", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("key_id"),
    )
    op.create_index(
        op.f("ix_usage_last_use_project_id"), "usage_last_use", ["project_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_usage_last_use_project_id"), table_name="usage_last_use")
    op.drop_table("usage_last_use")
    op.drop_index("ix_usage_buckets_project", table_name="usage_buckets")
    op.drop_table("usage_buckets")
