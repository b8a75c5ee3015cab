"""Repository side of the key cache: one row (plus its certificates) -> KeyRecord; and
the ids issued before key ids had a tag, which the engine admits without one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from keyguard.audit.models import AuditEvent, AuditHead
from keyguard.crypto.envelope import Envelope
from keyguard.crypto.keys import ENVIRONMENTS, LEGACY_ID_CHARS, looks_like_legacy_key_id
from keyguard.engine.records import KeyRecord, RateLimitRule
from keyguard.keys.models import ApiKey, KeyCertificate
from keyguard.projects.models import Project
from keyguard.state.redis import CLEAR_ALL


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
        quarantined=row.quarantined_at is not None,
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


def key_record_query(
    key_id: str,
) -> Select[ApiKey, bool, str, datetime, datetime]:
    """The key, its project's key-age rule and its certificates, in one statement (one row
    per certificate, or one without): a cache miss waits for every round trip."""
    return (
        select(
            ApiKey,
            Project.enforce_max_key_age,
            KeyCertificate.fingerprint_sha256,
            KeyCertificate.not_before,
            KeyCertificate.not_after,
        )
        .outerjoin(Project, Project.id == ApiKey.project_id)
        .outerjoin(KeyCertificate, KeyCertificate.key_id == ApiKey.id)
        .where(ApiKey.id == key_id)
    )


def key_record_from(rows: Sequence[Any], envelope: Envelope) -> KeyRecord | None:
    """The record of :func:`key_record_query`'s rows."""
    if not rows:
        return None
    row, enforce = rows[0][0], bool(rows[0][1])
    # Outer-joined: a key without certificates has one row of NULLs for them.
    validity = {r[2]: (r[3].timestamp(), r[4].timestamp()) for r in rows if r[2] is not None}
    return to_record(row, envelope, frozenset(validity), validity, enforce_max_age=enforce)


async def load_key_record(
    session: AsyncSession, envelope: Envelope, key_id: str
) -> KeyRecord | None:
    rows = (await session.execute(key_record_query(key_id))).all()
    return key_record_from(rows, envelope)


def read_key_record(reader: Engine, envelope: Envelope, key_id: str) -> KeyRecord | None:
    """:func:`load_key_record` on a plain engine, for a worker thread (see
    :func:`keyguard.storage.db.create_reader`)."""
    with Session(reader) as session:
        return key_record_from(session.execute(key_record_query(key_id)).all(), envelope)


async def legacy_key_ids(sessions: async_sessionmaker[AsyncSession]) -> frozenset[str]:
    """Every key id (project and root keys) of the shape issued before the tag: 16
    characters after ``_live_``/``_test_``. None is issued any more, so what this reads at
    start is all there will ever be. (In LIKE an unescaped ``_`` is any one character;
    the underscores around the environment are escaped, and a tagged id, with 18
    characters after them, never matches.)"""
    any_chars = "_" * LEGACY_ID_CHARS
    shapes = [ApiKey.id.like(f"%!_{env}!_{any_chars}", escape="!") for env in ENVIRONMENTS]
    async with sessions() as session:
        found = await session.execute(select(ApiKey.id).where(or_(*shapes)))
        return frozenset(i for i in found.scalars() if looks_like_legacy_key_id(i))


_PER_POLL = 10_000


async def key_changes_after(
    sessions: async_sessionmaker[AsyncSession], after: int
) -> tuple[list[str], int]:
    """Keys changed after audit position ``after`` (every key change is audited in its
    own transaction, so the audit sequence is the change sequence), and the new position."""
    async with sessions() as session:
        rows = (
            await session.execute(
                select(AuditEvent.seq, AuditEvent.action, AuditEvent.target)
                .where(AuditEvent.seq > after)
                .order_by(AuditEvent.seq)
                .limit(_PER_POLL)
            )
        ).all()
    changed: list[str] = []
    for _, action, target in rows:
        if action.startswith(("key.", "root_key.")) and target:
            changed.append(target)
        elif action == "project.updated":  # e.g. key-age enforcement: every key of it
            changed.append(CLEAR_ALL)
    return changed, rows[-1][0] if rows else after


async def change_position(sessions: async_sessionmaker[AsyncSession]) -> int:
    """Where the change sequence stands now."""
    async with sessions() as session:
        head = await session.get(AuditHead, 1)
        return head.seq if head is not None else 0
