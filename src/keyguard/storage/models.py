"""SQLAlchemy models. The schema itself is owned by the Alembic migrations next door."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from keyguard.storage.types import UTCDateTime


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON,
        list[str]: JSON,
    }


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    key_prefix: Mapped[str] = mapped_column(String(16))
    owner_account_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id"))
    # Sealed (AES-GCM) webhook secrets; the previous one stays valid during rotation overlap.
    webhook_secret_sealed: Mapped[str] = mapped_column(Text)
    previous_webhook_secret_sealed: Mapped[str | None] = mapped_column(Text)
    previous_webhook_secret_until: Mapped[datetime | None]
    max_key_age_days: Mapped[int] = mapped_column(Integer, default=90)
    created_at: Mapped[datetime]


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


class AuditEvent(Base):
    """Append-only, hash-chained: ``hash = SHA-256(prev_hash || canonical(event))``."""

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    at: Mapped[datetime]
    project_id: Mapped[str | None] = mapped_column(String(40), index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    target: Mapped[str | None] = mapped_column(String(200))
    data: Mapped[dict[str, Any]]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditHead(Base):
    """One row; updating it inside the appending transaction serialises writers."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class UploadSession(Base):
    __tablename__ = "upload_sessions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    key_id: Mapped[str] = mapped_column(String(64))
    delivery_mode: Mapped[str] = mapped_column(String(16))
    webhook_url: Mapped[str | None] = mapped_column(Text)
    password_hash: Mapped[str | None] = mapped_column(String(100))
    max_photos: Mapped[int] = mapped_column(Integer, default=20)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)  # the retention sweep


class Photo(Base):
    __tablename__ = "photos"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("upload_sessions.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]


# ---- Webhooks: endpoints and the durable outbox (CONTRACT §7) ------------------------


class WebhookEndpoint(Base):
    """A receiver registered by a project; ``events`` may hold ``"*"`` (all)."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str]]
    description: Mapped[str] = mapped_column(String(200), default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(40))
    disabled_at: Mapped[datetime | None]
    # Start of the current run of failed attempts; cleared by any success.
    failing_since: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    deleted_at: Mapped[datetime | None]


class WebhookMessage(Base):
    """One event. Its id is the ``webhook-id`` header: stable across retries."""

    __tablename__ = "webhook_messages"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    event_type: Mapped[str] = mapped_column(String(100))
    payload: Mapped[str] = mapped_column(Text)  # the event's JSON ``data``, byte-stable
    created_at: Mapped[datetime] = mapped_column(index=True)  # the retention sweep


class WebhookDelivery(Base):
    """One message towards one destination: an endpoint, or an upload session's URL."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("webhook_messages.id"), index=True)
    endpoint_id: Mapped[str | None] = mapped_column(ForeignKey("webhook_endpoints.id"), index=True)
    # Indexed: a session's deliveries are listed by it (GET /v1/sessions/ID/deliveries).
    session_id: Mapped[str | None] = mapped_column(ForeignKey("upload_sessions.id"), index=True)
    url: Mapped[str] = mapped_column(Text)
    # What the per-destination concurrency cap counts: the endpoint or the session id.
    destination: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16))  # pending|succeeded|failed|cancelled
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    claimed_until: Mapped[datetime | None]
    claim_token: Mapped[str | None] = mapped_column(String(40))
    last_error: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class WebhookAttempt(Base):
    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    delivery_id: Mapped[str] = mapped_column(ForeignKey("webhook_deliveries.id"), index=True)
    attempt_number: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime]
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[float] = mapped_column(Float)
    response_excerpt: Mapped[str] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(String(40))
