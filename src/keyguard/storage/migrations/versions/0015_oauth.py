"""oauth: apps, authorization codes, grants, refresh and access tokens, signing keys

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from keyguard.storage.types import UTCDateTime

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oauth_apps",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("project_id", sa.String(length=40), sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("client_id", sa.String(length=40), nullable=False, unique=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(length=32), nullable=True),
        sa.Column("previous_secret_hash", sa.LargeBinary(length=32), nullable=True),
        sa.Column("previous_secret_until", UTCDateTime(), nullable=True),
        sa.Column("redirect_uris", sa.JSON(), nullable=False),
        sa.Column("allowed_domains", sa.JSON(), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("role_scopes", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("deleted_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_oauth_apps_project_id", "oauth_apps", ["project_id"])
    op.create_table(
        "oauth_codes",
        sa.Column("code_hash", sa.String(length=64), primary_key=True),
        sa.Column("app_id", sa.String(length=40), sa.ForeignKey("oauth_apps.id"), nullable=False),
        sa.Column("account_id", sa.String(length=40), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("code_challenge", sa.String(length=128), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.Column("grant_id", sa.String(length=40), nullable=True),
    )
    op.create_index("ix_oauth_codes_app_id", "oauth_codes", ["app_id"])
    op.create_index("ix_oauth_codes_expires_at", "oauth_codes", ["expires_at"])
    op.create_table(
        "oauth_grants",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("app_id", sa.String(length=40), sa.ForeignKey("oauth_apps.id"), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), sa.ForeignKey("accounts.id"), nullable=True),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_reason", sa.String(length=40), nullable=True),
    )
    op.create_index("ix_oauth_grants_app_id", "oauth_grants", ["app_id"])
    op.create_index("ix_oauth_grants_account_id", "oauth_grants", ["account_id"])
    op.create_table(
        "oauth_refresh_tokens",
        sa.Column("token_hash", sa.String(length=64), primary_key=True),
        sa.Column(
            "grant_id", sa.String(length=40), sa.ForeignKey("oauth_grants.id"), nullable=False
        ),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_oauth_refresh_tokens_grant_id", "oauth_refresh_tokens", ["grant_id"])
    op.create_table(
        "oauth_access_tokens",
        sa.Column("jti", sa.String(length=40), primary_key=True),
        sa.Column(
            "grant_id", sa.String(length=40), sa.ForeignKey("oauth_grants.id"), nullable=False
        ),
        sa.Column("issued_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
    )
    op.create_index(
        "ix_oauth_access_tokens_grant", "oauth_access_tokens", ["grant_id", "expires_at"]
    )
    op.create_index("ix_oauth_access_tokens_revoked_at", "oauth_access_tokens", ["revoked_at"])
    op.create_table(
        "oauth_signing_keys",
        sa.Column("kid", sa.String(length=40), primary_key=True),
        sa.Column("alg", sa.String(length=10), nullable=False),
        sa.Column("public_jwk", sa.JSON(), nullable=False),
        sa.Column("private_sealed", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("retired_at", UTCDateTime(), nullable=True),
    )


def downgrade() -> None:
    for table in (
        "oauth_signing_keys",
        "oauth_access_tokens",
        "oauth_refresh_tokens",
        "oauth_grants",
        "oauth_codes",
        "oauth_apps",
    ):
        op.drop_table(table)
