"""Index api_keys.updated_at: processes without Redis poll it for key changes.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_api_keys_updated_at", "api_keys", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_api_keys_updated_at", table_name="api_keys")
