"""OAuth 2 rows: apps (clients), authorization codes, grants with their refresh and access
tokens, and the keys that sign access tokens (CONTRACT §8).

No token or secret is stored as given: client secrets, codes and refresh tokens are kept
as hashes (they are random and long, so a keyed or plain hash is enough), access tokens
by their ``jti`` only, and the signing keys' private halves sealed with the master key.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from keyguard.storage.base import Base
from keyguard.storage.reseal import SealedColumn


class OAuthApp(Base):
    """A client application registered in a project."""

    __tablename__ = "oauth_apps"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    client_id: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    public: Mapped[bool] = mapped_column(Boolean)
    # HMAC under the key-hash pepper; None for a public client.
    secret_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    # The secret a rotation replaced, accepted until ``previous_secret_until``.
    previous_secret_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    previous_secret_until: Mapped[datetime | None]
    redirect_uris: Mapped[list[str]]
    allowed_domains: Mapped[list[str]]
    scopes: Mapped[list[str]]
    # role -> scopes it grants through this app; a role not listed: the default rule.
    role_scopes: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    deleted_at: Mapped[datetime | None]


class OAuthCode(Base):
    """An authorization code: works once, for ``CODE_TTL`` seconds, for one client and
    redirect URI, with the PKCE challenge it was asked with."""

    __tablename__ = "oauth_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("oauth_apps.id"), index=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    redirect_uri: Mapped[str] = mapped_column(Text)
    code_challenge: Mapped[str] = mapped_column(String(128))
    scopes: Mapped[list[str]]
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    used_at: Mapped[datetime | None]
    # What the code issued: revoked if the code is presented again.
    grant_id: Mapped[str | None] = mapped_column(String(40))


class OAuthGrant(Base):
    """One family of tokens: what one code exchange or client-credentials request began.
    Revoking it kills every refresh and access token of the family."""

    __tablename__ = "oauth_grants"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("oauth_apps.id"), index=True)
    project_id: Mapped[str] = mapped_column(String(40))
    account_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    scopes: Mapped[list[str]]
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(40))


class OAuthRefreshToken(Base):
    """A refresh token (SHA-256 of it); ``used_at`` is set when it is rotated, and a used
    one presented again revokes its grant."""

    __tablename__ = "oauth_refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    grant_id: Mapped[str] = mapped_column(ForeignKey("oauth_grants.id"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class OAuthAccessToken(Base):
    """An issued access token, by its ``jti``: what revoking its grant must reach, and
    the durable record of its revocation (read back by every process)."""

    __tablename__ = "oauth_access_tokens"
    __table_args__ = (Index("ix_oauth_access_tokens_grant", "grant_id", "expires_at"),)

    jti: Mapped[str] = mapped_column(String(40), primary_key=True)
    grant_id: Mapped[str] = mapped_column(ForeignKey("oauth_grants.id"))
    issued_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None] = mapped_column(index=True)


class OAuthSigningKey(Base):
    """ES256 keys that sign access tokens. The newest unretired one signs; retired ones
    stay published in the JWKS until every token they signed has expired."""

    __tablename__ = "oauth_signing_keys"

    kid: Mapped[str] = mapped_column(String(40), primary_key=True)
    alg: Mapped[str] = mapped_column(String(10))
    public_jwk: Mapped[dict[str, Any]]
    private_sealed: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    retired_at: Mapped[datetime | None]


def _context(row: OAuthSigningKey) -> str:
    return f"oauth-signing:{row.kid}"


# Values sealed with the master key (re-sealed by ``keyguard master-key rotate``).
SEALED = (SealedColumn(OAuthSigningKey, "private_sealed", _context),)
