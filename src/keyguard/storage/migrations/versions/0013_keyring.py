"""keyring: the root secret every derived key comes from, sealed with the master key

Revision ID: 0013
Revises: 0012

Filled at the next start (it needs the master key): with the master key itself for a
database that already holds hashes and seals, so they keep verifying.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "keyring",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("keyring")
