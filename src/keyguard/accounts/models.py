"""Account rows: people, their sign-in sessions, second factors, project roles and
invitations, and what login alerts remember (known devices and networks)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from keyguard.storage.base import Base
from keyguard.storage.reseal import SealedColumn


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    password_changed_at: Mapped[datetime | None]
    # Sealed TOTP secret; two-factor is on once ``totp_enabled_at`` is set (an enrolment
    # that was never confirmed leaves a secret and no date).
    totp_secret_sealed: Mapped[str | None] = mapped_column(Text)
    totp_enabled_at: Mapped[datetime | None]
    # The language of the person's pages ("en", "fr"); None follows the browser.
    language: Mapped[str | None] = mapped_column(String(8))


class AccountSession(Base):
    """A signed-in browser. The cookie holds a random token; only its SHA-256 is stored,
    so a copy of the database signs nobody in."""

    __tablename__ = "account_sessions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # shown, never a credential
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    # When the person last proved who they are (password, code or passkey): sensitive
    # changes need this to be recent.
    authenticated_at: Mapped[datetime]
    expires_at: Mapped[datetime]  # the absolute timeout
    ip: Mapped[str] = mapped_column(String(64))
    user_agent: Mapped[str] = mapped_column(String(300))
    method: Mapped[str] = mapped_column(String(40))  # password | password+totp | passkey | …
    revoked_at: Mapped[datetime | None]


class RecoveryCode(Base):
    __tablename__ = "account_recovery_codes"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))  # HMAC-SHA256 under a server key
    created_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class Passkey(Base):
    __tablename__ = "account_passkeys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    credential_id: Mapped[str] = mapped_column(String(1400), unique=True)  # base64url
    public_key: Mapped[bytes] = mapped_column(LargeBinary)  # COSE
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0)
    name: Mapped[str] = mapped_column(String(100))
    transports: Mapped[str] = mapped_column(String(200), default="")  # comma-separated
    backed_up: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]


class Membership(Base):
    __tablename__ = "project_members"

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))  # owner | admin | developer | viewer
    created_at: Mapped[datetime]


class Invitation(Base):
    __tablename__ = "project_invitations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(16))
    invited_by: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None]


class KnownDevice(Base):
    """A browser that holds a signed device cookie and has signed in to this account."""

    __tablename__ = "account_known_devices"
    __table_args__ = (UniqueConstraint("account_id", "device_hash"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    device_hash: Mapped[str] = mapped_column(String(64))
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]


class KnownNetwork(Base):
    """A /24 (IPv4) or /48 (IPv6) this account has signed in from."""

    __tablename__ = "account_known_networks"
    __table_args__ = (UniqueConstraint("account_id", "network"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    network: Mapped[str] = mapped_column(String(64))
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]


# Values sealed with the master key (re-sealed by ``keyguard master-key rotate``).
SEALED = (SealedColumn(Account, "totp_secret_sealed", lambda row: f"account-totp:{row.id}"),)
