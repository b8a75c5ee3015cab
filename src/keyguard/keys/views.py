"""What the key services hand the edges: frozen views, never ORM rows.

The API renders them as JSON and the dashboard will render them as pages; neither can
change a row by accident or lazily load one after its session closed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from keyguard.clock import has_passed
from keyguard.crypto.keys import IssuedKey
from keyguard.keys.models import ApiKey, KeyCertificate

KeyStatus = Literal["active", "expired", "revoked", "quarantined"]


@dataclass(frozen=True, slots=True)
class CertificateView:
    fingerprint_sha256: str
    subject: str
    not_before: datetime
    not_after: datetime

    @classmethod
    def of(cls, row: KeyCertificate) -> CertificateView:
        return cls(row.fingerprint_sha256, row.subject, row.not_before, row.not_after)


@dataclass(frozen=True, slots=True)
class RateLimitView:
    limit: int
    period_seconds: int


@dataclass(frozen=True, slots=True)
class KeyView:
    id: str
    project_id: str | None
    name: str
    environment: str
    status: KeyStatus
    scopes: tuple[str, ...]
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    quarantined_at: datetime | None
    rotated_from: str | None
    rotated_to: str | None
    ip_allowlist: tuple[str, ...]
    allowed_domains: tuple[str, ...]
    rate_limit: RateLimitView | None
    totp_enabled: bool
    require_signature: bool
    certificates: tuple[CertificateView, ...]
    rotate_by: datetime | None
    rotation_due: bool


@dataclass(frozen=True, slots=True, repr=False)
class CreatedKey:
    """A new key (created, regenerated or a rotation's successor) and its secret, shown once."""

    key: KeyView
    issued: IssuedKey

    def __repr__(self) -> str:
        return f"CreatedKey(id={self.key.id!r}, secret=<redacted>)"


def key_status(row: ApiKey, now: datetime) -> KeyStatus:
    if row.revoked_at is not None:
        return "revoked"
    if row.quarantined_at is not None:
        return "quarantined"
    if has_passed(row.expires_at, now):
        return "expired"
    return "active"


def key_view(row: ApiKey, certificates: Iterable[KeyCertificate], now: datetime) -> KeyView:
    rate = None
    if row.rate_limit is not None and row.rate_period_seconds is not None:
        rate = RateLimitView(row.rate_limit, row.rate_period_seconds)
    return KeyView(
        id=row.id,
        project_id=row.project_id,
        name=row.name,
        environment=row.environment,
        status=key_status(row, now),
        scopes=tuple(row.scopes),
        metadata=dict(row.key_metadata),
        created_at=row.created_at,
        updated_at=row.updated_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        quarantined_at=row.quarantined_at,
        rotated_from=row.rotated_from,
        rotated_to=row.rotated_to,
        ip_allowlist=tuple(row.ip_allowlist),
        allowed_domains=tuple(row.allowed_domains),
        rate_limit=rate,
        totp_enabled=row.totp_enabled,
        require_signature=row.require_signature,
        certificates=tuple(CertificateView.of(c) for c in certificates),
        rotate_by=row.rotate_by,
        rotation_due=row.revoked_at is None
        and row.rotated_to is None
        and has_passed(row.rotate_by, now),
    )
