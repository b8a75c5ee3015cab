"""API key rows and the client certificates pinned to them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from keyguard.storage.base import Base
from keyguard.storage.reseal import SealedColumn


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the public key id
    project_id: Mapped[str | None] = mapped_column(ForeignKey("projects.id"), index=True)
    account_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id"))
    is_root: Mapped[bool] = mapped_column(Boolean, default=False)
    name: Mapped[str] = mapped_column(String(200))
    environment: Mapped[str] = mapped_column(String(8))
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    scopes: Mapped[list[str]]
    key_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime] = mapped_column(index=True)
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    # Reported leaked in a project whose policy quarantines (CONTRACT §10): refused until
    # an owner releases it (a false report) or regenerates its secret.
    quarantined_at: Mapped[datetime | None]
    rotated_to: Mapped[str | None] = mapped_column(String(64))
    rotated_from: Mapped[str | None] = mapped_column(String(64))
    # Restrictions (CONTRACT §3-§4).
    ip_allowlist: Mapped[list[str]]
    allowed_domains: Mapped[list[str]]
    rate_limit: Mapped[int | None] = mapped_column(Integer)
    rate_period_seconds: Mapped[int | None] = mapped_column(Integer)
    totp_secret_sealed: Mapped[str | None] = mapped_column(Text)
    totp_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    signing_secret_sealed: Mapped[str | None] = mapped_column(Text)
    require_signature: Mapped[bool] = mapped_column(Boolean, default=False)
    # Key age (CONTRACT §3): created (or given a new secret) + the project's maximum age;
    # None for root keys. ``rotation_warned``: 0 none yet, 1 the 14-day, 2 the 3-day one.
    rotate_by: Mapped[datetime | None] = mapped_column(index=True)
    rotation_warned: Mapped[int] = mapped_column(SmallInteger, default=0)


class KeyCertificate(Base):
    __tablename__ = "key_certificates"
    __table_args__ = (UniqueConstraint("key_id", "fingerprint_sha256"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"), index=True)
    fingerprint_sha256: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(Text)
    not_before: Mapped[datetime]
    not_after: Mapped[datetime]
    pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


# Values sealed with the master key (re-sealed by ``keyguard master-key rotate``).
SEALED = (
    SealedColumn(ApiKey, "totp_secret_sealed", lambda row: f"totp:{row.id}"),
    SealedColumn(ApiKey, "signing_secret_sealed", lambda row: f"signing:{row.id}"),
)
