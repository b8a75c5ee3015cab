"""Repository side of the key cache: one row (plus its certificates) -> KeyRecord."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from keyguard.crypto.envelope import Envelope
from keyguard.engine.records import KeyRecord, RateLimitRule
from keyguard.keys.models import ApiKey, KeyCertificate
from keyguard.projects.models import Project


def to_record(
    row: ApiKey,
    envelope: Envelope,
    fingerprints: frozenset[str],
    validity: Mapping[str, tuple[float, float]] | None = None,
    *,
    enforce_max_age: bool = False,
) -> KeyRecord:
    rate = None
    if row.rate_limit is not None and row.rate_period_seconds is not None:
        rate = RateLimitRule(row.rate_limit, row.rate_period_seconds)
    totp = None
    if row.totp_enabled and row.totp_secret_sealed:
        totp = envelope.open(row.totp_secret_sealed, context=f"totp:{row.id}")
    signing = None
    if row.signing_secret_sealed:
        signing = envelope.open(row.signing_secret_sealed, context=f"signing:{row.id}")
    return KeyRecord(
        id=row.id,
        project_id=row.project_id,
        environment=row.environment,
        secret_hash=row.secret_hash,
        scopes=frozenset(row.scopes),
        is_root=row.is_root,
        expires_at=_effective_expiry(row, enforce_max_age),
        revoked=row.revoked_at is not None,
        ip_allowlist=tuple(row.ip_allowlist),
        allowed_domains=tuple(row.allowed_domains),
        rate_limit=rate,
        totp_secret=totp,
        signing_secret=signing,
        require_signature=row.require_signature,
        certificate_fingerprints=fingerprints,
        certificate_validity=dict(validity or {}),
    )


def _effective_expiry(row: ApiKey, enforce_max_age: bool) -> float | None:
    """``expires_at``, or ``rotate_by`` when earlier and the project enforces key age."""
    deadlines = [row.expires_at]
    if enforce_max_age:
        deadlines.append(row.rotate_by)
    present = [d.timestamp() for d in deadlines if d is not None]
    return min(present) if present else None


async def load_key_record(
    session: AsyncSession, envelope: Envelope, key_id: str
) -> KeyRecord | None:
    row = await session.get(ApiKey, key_id)
    if row is None:
        return None
    certs = await session.execute(
        select(
            KeyCertificate.fingerprint_sha256, KeyCertificate.not_before, KeyCertificate.not_after
        ).where(KeyCertificate.key_id == key_id)
    )
    validity = {fp: (nb.timestamp(), na.timestamp()) for fp, nb, na in certs}
    enforce = False
    if row.project_id is not None:
        enforced = await session.execute(
            select(Project.enforce_max_key_age).where(Project.id == row.project_id)
        )
        enforce = bool(enforced.scalar_one_or_none())
    return to_record(row, envelope, frozenset(validity), validity, enforce_max_age=enforce)


async def keys_changed_since(
    sessions: async_sessionmaker[AsyncSession], since: datetime
) -> list[tuple[str, datetime]]:
    """(id, updated_at) of keys changed after ``since``: the polling cache bus's query."""
    async with sessions() as session:
        rows = await session.execute(
            select(ApiKey.id, ApiKey.updated_at).where(ApiKey.updated_at > since)
        )
        return [(key_id, updated_at) for key_id, updated_at in rows]
