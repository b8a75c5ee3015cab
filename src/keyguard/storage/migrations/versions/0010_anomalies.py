"""usage anomalies: the networks each key is used from, once-per-hour claims; per-project
thresholds

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import keyguard.storage.types

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_networks",
        sa.Column("key_id", sa.String(length=40), nullable=False),
        sa.Column("network", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=True),
        sa.Column("first_seen", keyguard.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen", keyguard.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key_id", "network"),
    )
    op.create_table(
        "usage_anomaly_claims",
        sa.Column("key_id", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("reported_at", keyguard.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key_id", "reason"),
    )
    with op.batch_alter_table("projects") as batch:
        batch.add_column(
            sa.Column("anomaly_thresholds", sa.JSON(), nullable=False, server_default="{}")
        )


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("anomaly_thresholds")
    op.drop_table("usage_anomaly_claims")
    op.drop_table("usage_networks")
