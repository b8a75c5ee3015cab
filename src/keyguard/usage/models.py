"""Usage counts (CONTRACT §10): one row per key, time bucket and answer, never one per
request. Buckets are minutes, hours and days (``granularity``); a flush adds to all three,
so a long range is read from hours or days, not from tens of thousands of minutes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, String
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from keyguard.storage.base import Base

GRANULARITIES = {"minute": 60, "hour": 3600, "day": 86400}
# Each project's own buckets (its keys' sums) are kept too, under this pseudo key id, so
# a project's series reads one row per bucket and answer, not one per key.
PROJECT_TOTAL = "@"


def project_total(project_id: str) -> str:
    return PROJECT_TOTAL + project_id


def upsert(db: AsyncSession, model: Any) -> Any:
    """INSERT … ON CONFLICT for the database at hand (SQLite and PostgreSQL share it)."""
    if db.get_bind().dialect.name == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)


class UsageBucket(Base):
    __tablename__ = "usage_buckets"
    # Covering (key and count included): a project's busiest keys over 30 days read tens
    # of thousands of index entries, never the table rows behind them.
    __table_args__ = (
        Index(
            "ix_usage_buckets_project",
            "granularity",
            "project_id",
            "start",
            "key_id",
            "count",
        ),
    )

    granularity: Mapped[str] = mapped_column(String(6), primary_key=True)  # minute|hour|day
    key_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    start: Mapped[datetime] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), primary_key=True)  # "" for a success
    project_id: Mapped[str | None] = mapped_column(String(40))
    count: Mapped[int] = mapped_column(BigInteger)


class KeyNetwork(Base):
    """A /24 or /48 a key was used from (successfully), for ``new_network`` anomalies."""

    __tablename__ = "usage_networks"

    key_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    network: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str | None] = mapped_column(String(40))
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]


class AnomalyClaim(Base):
    """When each key last had an anomaly of each reason reported: the once-per-hour rule,
    claimed in the same transaction as the report (so a failed report claims nothing)."""

    __tablename__ = "usage_anomaly_claims"

    key_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    reason: Mapped[str] = mapped_column(String(20), primary_key=True)
    reported_at: Mapped[datetime]


class KeyLastUse(Base):
    """When and from where each key was last presented (successfully or not)."""

    __tablename__ = "usage_last_use"

    key_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str | None] = mapped_column(String(40), index=True)
    last_used_at: Mapped[datetime]
    last_ip: Mapped[str | None] = mapped_column(String(64))
