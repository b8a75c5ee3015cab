"""key age: rotate_by and rotation warnings on keys; enforcement per project

Revision ID: 0009
Revises: 0008

Existing project keys get ``rotate_by`` = created + their project's ``max_key_age_days``
(computed here in Python: date arithmetic differs between SQLite and PostgreSQL).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

import keyguard.storage.types

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(
            sa.Column("rotate_by", keyguard.storage.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch.add_column(
            sa.Column("rotation_warned", sa.SmallInteger(), nullable=False, server_default="0")
        )
        batch.create_index("ix_api_keys_rotate_by", ["rotate_by"], unique=False)
    with op.batch_alter_table("projects") as batch:
        batch.add_column(
            sa.Column(
                "enforce_max_key_age", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
    conn = op.get_bind()
    keys = sa.table(
        "api_keys",
        sa.column("id", sa.String),
        sa.column("project_id", sa.String),
        sa.column("created_at", keyguard.storage.types.UTCDateTime(timezone=True)),
        sa.column("rotate_by", keyguard.storage.types.UTCDateTime(timezone=True)),
        sa.column("rotation_warned", sa.SmallInteger),
    )
    projects = sa.table(
        "projects", sa.column("id", sa.String), sa.column("max_key_age_days", sa.Integer)
    )
    rows = conn.execute(
        sa.select(keys.c.id, keys.c.created_at, projects.c.max_key_age_days).join(
            projects, projects.c.id == keys.c.project_id
        )
    ).all()
    now = datetime.now(UTC)
    for key_id, created_at, days in rows:
        if created_at.tzinfo is None:
            created_at = created_at.replace(tzinfo=UTC)
        due: datetime = created_at + timedelta(days=days)
        # Keys already past their deadline at the upgrade are marked warned: they show as
        # rotation_due, and the upgrade does not send a burst of emails about all of them.
        warned = 2 if due <= now else 0
        conn.execute(
            sa.update(keys).where(keys.c.id == key_id).values(rotate_by=due, rotation_warned=warned)
        )


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("enforce_max_key_age")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_index("ix_api_keys_rotate_by")
        batch.drop_column("rotation_warned")
        batch.drop_column("rotate_by")
