"""Root keys, the management credential, have a lifecycle too (CONTRACT §3): made,
listed (never a secret), revoked at once, rotated with a grace period — and never all
gone: the last active root key cannot be revoked (``keyguard root-key create`` on the
data directory is the way back in when every root key is lost). All audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from keyguard.audit import service as audit
from keyguard.clock import has_passed, utc_from_ts
from keyguard.context import ServiceContext
from keyguard.errors import NotFound
from keyguard.keys import service as keys
from keyguard.keys.errors import KeyAlreadyRevoked, KeyAlreadyRotated, LastRootKey
from keyguard.keys.models import ApiKey


@dataclass(frozen=True, slots=True)
class RootKeyView:
    id: str
    name: str
    account_id: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    rotated_from: str | None
    rotated_to: str | None
    active: bool

    @classmethod
    def of(cls, row: ApiKey, now: datetime) -> RootKeyView:
        active = row.revoked_at is None and not has_passed(row.expires_at, now)
        return cls(
            row.id,
            row.name,
            row.account_id,
            row.created_at,
            row.expires_at,
            row.revoked_at,
            row.rotated_from,
            row.rotated_to,
            active,
        )


@dataclass(frozen=True, slots=True, repr=False)
class CreatedRootKey:
    view: RootKeyView
    key: str  # shown once

    def __repr__(self) -> str:
        return f"CreatedRootKey(id={self.view.id!r}, key=<redacted>)"


def _now(ctx: ServiceContext) -> datetime:
    return utc_from_ts(ctx.clock.now())


async def list_root_keys(ctx: ServiceContext) -> list[RootKeyView]:
    now = _now(ctx)
    async with ctx.sessions() as db:
        rows = await db.execute(
            select(ApiKey).where(ApiKey.is_root.is_(True)).order_by(ApiKey.created_at, ApiKey.id)
        )
        return [RootKeyView.of(row, now) for row in rows.scalars()]


async def create_root_key(
    ctx: ServiceContext, *, name: str, actor: str, account_id: str | None = None
) -> CreatedRootKey:
    now = _now(ctx)
    async with ctx.transaction() as db:
        if account_id is None:  # made with a root key: same account as that key
            by = await db.get(ApiKey, actor)
            account_id = by.account_id if by is not None and by.is_root else None
        created = await keys.create_root_key(db, ctx, account_id=account_id, name=name, actor=actor)
        row = await db.get(ApiKey, created.key.id)
        assert row is not None
        view = RootKeyView.of(row, now)
    return CreatedRootKey(view, created.issued.key)


async def _active_others(db: AsyncSession, key_id: str, now: datetime) -> int:
    counted = await db.execute(
        select(func.count())
        .select_from(ApiKey)
        .where(
            ApiKey.is_root.is_(True),
            ApiKey.id != key_id,
            ApiKey.revoked_at.is_(None),
            or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now),
        )
    )
    return int(counted.scalar_one())


async def _locked_root(db: AsyncSession, key_id: str) -> ApiKey:
    # Every root-key change takes the same locks in the same order (the table's root
    # rows), so two revocations racing cannot both see "another one is left".
    rows = await db.execute(
        select(ApiKey).where(ApiKey.is_root.is_(True)).order_by(ApiKey.id).with_for_update()
    )
    found = {row.id: row for row in rows.scalars()}
    if key_id not in found:
        raise NotFound()
    return found[key_id]


async def revoke_root_key(ctx: ServiceContext, key_id: str, *, actor: str) -> None:
    now = _now(ctx)
    async with ctx.transaction() as db:
        row = await _locked_root(db, key_id)
        if row.revoked_at is not None:
            return  # idempotent
        if await _active_others(db, key_id, now) == 0:
            raise LastRootKey()
        row.revoked_at = row.updated_at = now
        await audit.record(db, at=now, actor=actor, action="root_key.revoked", target=key_id)
    ctx.cache.invalidate(key_id)


async def rotate_root_key(
    ctx: ServiceContext, key_id: str, *, grace_seconds: int, actor: str
) -> CreatedRootKey:
    now = _now(ctx)
    async with ctx.transaction() as db:
        old = await _locked_root(db, key_id)
        if old.revoked_at is not None:
            raise KeyAlreadyRevoked()
        if old.rotated_to is not None:
            raise KeyAlreadyRotated(rotated_to=old.rotated_to)
        created = await keys.create_root_key(
            db, ctx, account_id=old.account_id, name=old.name, actor=actor, rotated_from=old.id
        )
        new = await db.get(ApiKey, created.key.id)
        assert new is not None
        grace_end = now + timedelta(seconds=grace_seconds)
        if old.expires_at is None or old.expires_at > grace_end:
            old.expires_at = grace_end
        old.rotated_to = new.id
        old.updated_at = now
        await audit.record(
            db, at=now, actor=actor, action="root_key.rotated", target=old.id,
            data={"new_key_id": new.id, "grace_seconds": grace_seconds},
        )  # fmt: skip
        view = RootKeyView.of(new, now)
    ctx.cache.invalidate(key_id)
    return CreatedRootKey(view, created.issued.key)
