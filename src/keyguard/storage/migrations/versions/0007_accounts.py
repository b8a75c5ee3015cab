"""accounts: sessions, second factors, roles, invitations, login alerts, mail outbox

Revision ID: 0007
Revises: 0006

Existing projects get their members: the account that created one becomes its owner, and
a project created with a root key (no creating account) is owned by every administrator
account (the one ``keyguard init`` made).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import keyguard.storage.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "account_known_devices",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("device_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "first_seen_at", keyguard.storage.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "last_seen_at", keyguard.storage.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account_id", "device_hash"),
    )
    with op.batch_alter_table("account_known_devices", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_account_known_devices_account_id"), ["account_id"], unique=False
        )

    op.create_table(
        "account_known_networks",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("network", sa.String(length=64), nullable=False),
        sa.Column(
            "first_seen_at", keyguard.storage.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "last_seen_at", keyguard.storage.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account_id", "network"),
    )
    with op.batch_alter_table("account_known_networks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_account_known_networks_account_id"), ["account_id"], unique=False
        )

    op.create_table(
        "account_passkeys",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("credential_id", sa.String(length=1400), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("sign_count", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("transports", sa.String(length=200), nullable=False),
        sa.Column("backed_up", sa.Boolean(), nullable=False),
        sa.Column("created_at", keyguard.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", keyguard.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("credential_id"),
    )
    with op.batch_alter_table("account_passkeys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_account_passkeys_account_id"), ["account_id"], unique=False
        )

    op.create_table(
        "account_recovery_codes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", keyguard.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", keyguard.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("account_recovery_codes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_account_recovery_codes_account_id"), ["account_id"], unique=False
        )

    op.create_table(
        "account_sessions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", keyguard.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "last_seen_at", keyguard.storage.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "authenticated_at", keyguard.storage.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("expires_at", keyguard.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("user_agent", sa.String(length=300), nullable=False),
        sa.Column("method", sa.String(length=40), nullable=False),
        sa.Column("revoked_at", keyguard.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("account_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_account_sessions_account_id"), ["account_id"], unique=False
        )

    op.create_table(
        "mail_outbox",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=True),
        sa.Column("to_address", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column(
            "next_attempt_at", keyguard.storage.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("created_at", keyguard.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", keyguard.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("mail_outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mail_outbox_account_id"), ["account_id"], unique=False)
        batch_op.create_index("ix_mail_outbox_due", ["status", "next_attempt_at"], unique=False)

    op.create_table(
        "project_invitations",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("invited_by", sa.String(length=40), nullable=False),
        sa.Column("created_at", keyguard.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", keyguard.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", keyguard.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("project_invitations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_project_invitations_project_id"), ["project_id"], unique=False
        )

    op.create_table(
        "project_members",
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", keyguard.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
        ),
        sa.PrimaryKeyConstraint("project_id", "account_id"),
    )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "password_changed_at",
                keyguard.storage.types.UTCDateTime(timezone=True),
                nullable=True,
            )
        )
        batch_op.add_column(sa.Column("totp_secret_sealed", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "totp_enabled_at", keyguard.storage.types.UTCDateTime(timezone=True), nullable=True
            )
        )
    op.execute(
        "INSERT INTO project_members (project_id, account_id, role, created_at) "
        "SELECT id, owner_account_id, 'owner', created_at FROM projects "
        "WHERE owner_account_id IS NOT NULL"
    )
    op.execute(
        "INSERT INTO project_members (project_id, account_id, role, created_at) "
        "SELECT p.id, a.id, 'owner', p.created_at FROM projects p, accounts a "
        "WHERE p.owner_account_id IS NULL AND a.is_admin"
    )


def downgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("totp_enabled_at")
        batch_op.drop_column("totp_secret_sealed")
        batch_op.drop_column("password_changed_at")

    op.drop_table("project_members")
    with op.batch_alter_table("project_invitations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_project_invitations_project_id"))

    op.drop_table("project_invitations")
    with op.batch_alter_table("mail_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_mail_outbox_due")
        batch_op.drop_index(batch_op.f("ix_mail_outbox_account_id"))

    op.drop_table("mail_outbox")
    with op.batch_alter_table("account_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_account_sessions_account_id"))

    op.drop_table("account_sessions")
    with op.batch_alter_table("account_recovery_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_account_recovery_codes_account_id"))

    op.drop_table("account_recovery_codes")
    with op.batch_alter_table("account_passkeys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_account_passkeys_account_id"))

    op.drop_table("account_passkeys")
    with op.batch_alter_table("account_known_networks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_account_known_networks_account_id"))

    op.drop_table("account_known_networks")
    with op.batch_alter_table("account_known_devices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_account_known_devices_account_id"))

    op.drop_table("account_known_devices")
