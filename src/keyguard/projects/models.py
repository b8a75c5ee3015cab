"""Project rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from keyguard.storage.base import Base
from keyguard.storage.reseal import SealedColumn


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
    # With it, a key stops working at its rotate_by (CONTRACT §3).
    enforce_max_key_age: Mapped[bool] = mapped_column(Boolean, default=False)
    # Usage anomaly thresholds (CONTRACT §10) that differ from the defaults.
    anomaly_thresholds: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # What a leak report does to a key (CONTRACT §10): "revoke" it, or "quarantine" it
    # (refused, reversible by an owner).
    leak_policy: Mapped[str] = mapped_column(String(12), default="revoke")
    created_at: Mapped[datetime]


# Values sealed with the master key (re-sealed by ``keyguard master-key rotate``); both
# webhook secrets are sealed under the project's context.
SEALED = (
    SealedColumn(Project, "webhook_secret_sealed", lambda row: f"webhook:{row.id}"),
    SealedColumn(Project, "previous_webhook_secret_sealed", lambda row: f"webhook:{row.id}"),
)
