"""Index webhook_deliveries.session_id: a session's deliveries are listed by it.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_webhook_deliveries_session_id", "webhook_deliveries", ["session_id"])


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_session_id", table_name="webhook_deliveries")
