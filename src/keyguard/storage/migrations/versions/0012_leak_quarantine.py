"""leak quarantine: a project's leak_policy, a key's quarantined_at

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import keyguard.storage.types

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(
            sa.Column(
                "quarantined_at", keyguard.storage.types.UTCDateTime(timezone=True), nullable=True
            )
        )
    with op.batch_alter_table("projects") as batch:
        batch.add_column(
            sa.Column("leak_policy", sa.String(length=12), nullable=False, server_default="revoke")
        )


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("leak_policy")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("quarantined_at")
