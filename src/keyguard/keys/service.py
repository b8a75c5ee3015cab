"""API key lifecycle: create, list, get, update, revoke, regenerate, rotate.

Every change runs through ``keys.changes.changing_key``: one transaction with its audit
event, then the key is dropped from the cache so the next request sees it (revocation
is immediate).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from keyguard.audit import service as audit
from keyguard.clock import has_passed, utc_from_ts
from keyguard.context import ServiceContext
from keyguard.crypto.keys import ROOT_PREFIX, IssuedKey, new_secret_for
from keyguard.errors import NotFound, ValidationFailed
from keyguard.keys.changes import changing_key, live_project_key, project_key
from keyguard.keys.errors import KeyAlreadyRotated, KeyExpiredConflict, KeyNotQuarantined
from keyguard.keys.models import ApiKey, KeyCertificate
from keyguard.keys.views import CreatedKey, KeyView, key_view
from keyguard.projects.models import Project

MAX_PAGE = 100


@dataclass(frozen=True, slots=True)
class KeySpec:
    """Validated settings of a key (the HTTP schema has already checked shapes)."""

    name: str
    environment: str = "live"
    scopes: tuple[str, ...] = ()
    expires_at: datetime | None = None
    metadata: dict[str, Any] | None = None
    ip_allowlist: tuple[str, ...] = ()
    allowed_domains: tuple[str, ...] = ()
    rate_limit: tuple[int, int] | None = None  # (limit, period_seconds)


def _now(ctx: ServiceContext) -> datetime:
    return utc_from_ts(ctx.clock.now())


def _check_expiry(ctx: ServiceContext, expires_at: datetime | None) -> None:
    if expires_at is not None and expires_at <= _now(ctx):
        raise ValidationFailed("expires_at must be in the future", field="expires_at")


def _refuse_if_expired(ctx: ServiceContext, row: ApiKey) -> None:
    """An expired key gets no new secret and no successor (``KeyExpiredConflict``, 409)."""
    if has_passed(row.expires_at, _now(ctx)):
        raise KeyExpiredConflict()


def rotate_by(now: datetime, max_age_days: int | None) -> datetime | None:
    """When a key given its secret ``now`` should be rotated (CONTRACT §3)."""
    return None if max_age_days is None else now + timedelta(days=max_age_days)


def _new_row(
    ctx: ServiceContext,
    issued: IssuedKey,
    spec: KeySpec,
    project_id: str | None,
    *,
    max_age_days: int | None,
) -> ApiKey:
    now = _now(ctx)
    limit, period = spec.rate_limit if spec.rate_limit else (None, None)
    return ApiKey(
        id=issued.id,
        project_id=project_id,
        is_root=False,
        name=spec.name,
        environment=spec.environment,
        secret_hash=ctx.hasher.hash(issued.secret),
        scopes=list(spec.scopes),
        key_metadata=dict(spec.metadata or {}),
        created_at=now,
        updated_at=now,
        expires_at=spec.expires_at,
        ip_allowlist=list(spec.ip_allowlist),
        allowed_domains=list(spec.allowed_domains),
        rate_limit=limit,
        rate_period_seconds=period,
        totp_enabled=False,
        require_signature=False,
        rotate_by=rotate_by(now, max_age_days),
        rotation_warned=0,
    )


async def create_key(
    ctx: ServiceContext, project_id: str, spec: KeySpec, *, actor: str
) -> CreatedKey:
    _check_expiry(ctx, spec.expires_at)
    async with ctx.transaction() as session:
        project = await session.get(Project, project_id)
        if project is None:
            raise NotFound()
        issued = ctx.key_ids.issue(project.key_prefix, spec.environment)
        row = _new_row(ctx, issued, spec, project_id, max_age_days=project.max_key_age_days)
        session.add(row)
        await session.flush()
        await audit.record(
            session,
            at=row.created_at,
            actor=actor,
            action="key.created",
            target=row.id,
            project_id=project_id,
            data={
                "name": spec.name,
                "environment": spec.environment,
                **_created_settings(_audited_settings(row)),
            },
        )
    ctx.cache.invalidate(row.id)
    return CreatedKey(key_view(row, (), _now(ctx)), issued)


async def create_root_key(
    session: AsyncSession,
    ctx: ServiceContext,
    *,
    account_id: str | None,
    name: str,
    actor: str | None = None,
    rotated_from: str | None = None,
) -> CreatedKey:
    """Root keys authenticate the management API; they belong to an account, not a project.
    In the caller's transaction; audited as made by ``actor`` (default: the account)."""
    issued = ctx.key_ids.issue(ROOT_PREFIX, "live")
    row = _new_row(ctx, issued, KeySpec(name=name), None, max_age_days=None)
    row.is_root = True
    row.account_id = account_id
    row.rotated_from = rotated_from
    session.add(row)
    await session.flush()
    await audit.record(
        session,
        at=row.created_at,
        actor=actor or account_id or "keyguard",
        action="root_key.created",
        target=row.id,
        data={"name": name, **({"rotated_from": rotated_from} if rotated_from else {})},
    )
    return CreatedKey(key_view(row, (), row.created_at), issued)


def _encode_cursor(row: ApiKey) -> str:
    return base64.urlsafe_b64encode(f"{row.created_at.isoformat()}|{row.id}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        at, _, key_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        when = datetime.fromisoformat(at)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValidationFailed("cursor is not valid") from None
    if when.tzinfo is None:  # we only ever issue aware timestamps
        raise ValidationFailed("cursor is not valid")
    return when, key_id


@dataclass(frozen=True, slots=True)
class KeyFilter:
    """What the dashboard's key list narrows to (all in SQL, so every key is found)."""

    text: str = ""  # part of the name or the id, any case
    status: str = ""  # one of KeyStatus, or "" for any
    environment: str = ""  # "live", "test" or ""


def _filtered(query: Any, wanted: KeyFilter, now: datetime) -> Any:
    if wanted.text:
        needle = wanted.text.lower()  # % and _ are matched as themselves (autoescape)
        query = query.where(
            or_(
                func.lower(ApiKey.name).contains(needle, autoescape=True),
                func.lower(ApiKey.id).contains(needle, autoescape=True),
            )
        )
    if wanted.environment:
        query = query.where(ApiKey.environment == wanted.environment)
    # The same precedence as views.key_status: revoked, quarantined, expired, active.
    live = and_(ApiKey.revoked_at.is_(None), ApiKey.quarantined_at.is_(None))
    expired = and_(ApiKey.expires_at.is_not(None), ApiKey.expires_at <= now)
    if wanted.status == "revoked":
        query = query.where(ApiKey.revoked_at.is_not(None))
    elif wanted.status == "quarantined":
        query = query.where(ApiKey.revoked_at.is_(None), ApiKey.quarantined_at.is_not(None))
    elif wanted.status == "expired":
        query = query.where(live, expired)
    elif wanted.status == "active":
        query = query.where(live, ~expired)
    return query


async def list_keys(
    ctx: ServiceContext,
    project_id: str,
    *,
    limit: int = 50,
    cursor: str | None = None,
    rotation_due: bool = False,
    wanted: KeyFilter | None = None,
) -> tuple[list[KeyView], str | None]:
    """A page of keys in creation order, and the cursor of the next page (None at the end);
    with ``rotation_due``, only the live keys past their ``rotate_by``; ``wanted``
    narrows by text, status and environment."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationFailed(f"limit must be between 1 and {MAX_PAGE}")
    query = select(ApiKey).where(ApiKey.project_id == project_id)
    if wanted is not None:
        query = _filtered(query, wanted, _now(ctx))
    if rotation_due:
        query = query.where(
            ApiKey.revoked_at.is_(None),
            ApiKey.rotated_to.is_(None),  # already rotated: in its grace period, not due
            ApiKey.rotate_by <= _now(ctx),
        )
    if cursor:
        at, key_id = _decode_cursor(cursor)
        query = query.where(
            or_(ApiKey.created_at > at, and_(ApiKey.created_at == at, ApiKey.id > key_id))
        )
    query = query.order_by(ApiKey.created_at, ApiKey.id).limit(limit + 1)
    async with ctx.sessions() as session:
        if await session.get(Project, project_id) is None:
            raise NotFound()
        rows = list((await session.execute(query)).scalars())
        more = len(rows) > limit
        rows = rows[:limit]
        certs = await _certificates_of(session, [r.id for r in rows])
    now = _now(ctx)
    page = [key_view(r, certs[r.id], now) for r in rows]
    return page, (_encode_cursor(rows[-1]) if more and rows else None)


async def project_of_key(ctx: ServiceContext, key_id: str) -> str | None:
    """The project a key belongs to (None for a root key or no such key)."""
    async with ctx.sessions() as session:
        found = await session.execute(select(ApiKey.project_id).where(ApiKey.id == key_id))
        return found.scalar_one_or_none()


async def get_key(ctx: ServiceContext, key_id: str) -> KeyView:
    async with ctx.sessions() as session:
        row = await project_key(session, key_id)
        certs = (await _certificates_of(session, [key_id]))[key_id]
    return key_view(row, certs, _now(ctx))


async def _created(ctx: ServiceContext, row: ApiKey, issued: IssuedKey) -> CreatedKey:
    # A rotated key's successor inherits its certificates: show them.
    async with ctx.sessions() as session:
        certs = (await _certificates_of(session, [row.id]))[row.id]
    return CreatedKey(key_view(row, certs, _now(ctx)), issued)


async def _certificates_of(
    session: AsyncSession, key_ids: list[str]
) -> dict[str, list[KeyCertificate]]:
    found: dict[str, list[KeyCertificate]] = {key_id: [] for key_id in key_ids}
    if key_ids:
        rows = await session.execute(
            select(KeyCertificate)
            .where(KeyCertificate.key_id.in_(key_ids))
            .order_by(KeyCertificate.id)
        )
        for cert in rows.scalars():
            found[cert.key_id].append(cert)
    return found


_PATCHABLE = {
    "name",
    "scopes",
    "expires_at",
    "metadata",
    "ip_allowlist",
    "allowed_domains",
    "rate_limit",
}


async def update_key(
    ctx: ServiceContext, key_id: str, changes: dict[str, Any], *, actor: str
) -> KeyView:
    """Apply ``changes`` (field -> new value). No changes: the key as it is, untouched
    (no audit event, no webhook, same ``updated_at``)."""
    unknown = set(changes) - _PATCHABLE
    if unknown:
        raise ValidationFailed(f"cannot change: {', '.join(sorted(unknown))}")
    if "expires_at" in changes:
        _check_expiry(ctx, changes["expires_at"])
    if not changes:
        async with ctx.sessions() as session:
            await live_project_key(session, key_id)
        return await get_key(ctx, key_id)
    async with changing_key(ctx, key_id, actor=actor) as change:
        row = change.row
        # Rotation is final: the old key's expiry is the end of its grace period. Moving
        # it (or removing it) would keep the replaced key alive next to its successor.
        if "expires_at" in changes and row.rotated_to is not None:
            raise KeyAlreadyRotated(
                "a rotated key expires when its grace period ends; revoke it to end it sooner",
                rotated_to=row.rotated_to,
            )
        before = _audited_settings(row)
        for field, value in changes.items():
            if field == "metadata":
                row.key_metadata = dict(value or {})
            elif field == "rate_limit":
                row.rate_limit, row.rate_period_seconds = value if value else (None, None)
            elif field in ("scopes", "ip_allowlist", "allowed_domains"):
                setattr(row, field, list(value))
            else:
                setattr(row, field, value)
        restriction = bool({"ip_allowlist", "allowed_domains", "rate_limit"} & set(changes))
        await change.record(
            "key.restrictions_changed" if restriction else "key.updated",
            fields=sorted(changes),
            **_settings_change(before, _audited_settings(row)),
        )
    return await get_key(ctx, key_id)


# Audit entries say what a key may do, not only that something changed: an allowlist
# opened to 0.0.0.0/0 must be visible in the log. Lists are recorded as what was added
# and removed, at most AUDIT_LIST_ITEMS of each (allowlists hold up to 10,000 entries).
AUDIT_LIST_ITEMS = 100


def _audited_settings(row: ApiKey) -> dict[str, Any]:
    rate = None
    if row.rate_limit is not None:
        rate = {"limit": row.rate_limit, "period_seconds": row.rate_period_seconds}
    return {
        "scopes": list(row.scopes),
        "ip_allowlist": list(row.ip_allowlist),
        "allowed_domains": list(row.allowed_domains),
        "rate_limit": rate,
        "expires_at": None if row.expires_at is None else row.expires_at.isoformat(),
    }


def _settings_change(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    changed: dict[str, Any] = {}
    for name, old in before.items():
        new = after[name]
        if old == new:
            continue
        if isinstance(old, list):
            old_set, new_set = set(old), set(new)
            added = [item for item in new if item not in old_set]
            removed = [item for item in old if item not in new_set]
            changed[name] = {
                "added": added[:AUDIT_LIST_ITEMS],
                "removed": removed[:AUDIT_LIST_ITEMS],
                "count": len(new),
            }
        else:
            changed[name] = {"from": old, "to": new}
    return {"changes": changed} if changed else {}


def _created_settings(settings: dict[str, Any]) -> dict[str, Any]:
    return {
        name: (
            {"items": value[:AUDIT_LIST_ITEMS], "count": len(value)}
            if isinstance(value, list) and name != "scopes"
            else value
        )
        for name, value in settings.items()
    }


async def revoke_key(ctx: ServiceContext, key_id: str, *, actor: str) -> None:
    async with changing_key(ctx, key_id, actor=actor, revoked_ok=True) as change:
        if change.row.revoked_at is not None:
            return  # idempotent: revoking twice changes nothing
        change.row.revoked_at = change.now
        await change.record("key.revoked")


async def quarantine_key(ctx: ServiceContext, key_id: str, *, actor: str) -> bool:
    """Refuse a key reported leaked until an owner looks at it; False if it already was."""
    async with changing_key(ctx, key_id, actor=actor) as change:
        if change.row.quarantined_at is not None:
            return False
        change.row.quarantined_at = change.now
        await change.record("key.quarantined")
    return True


async def release_key(ctx: ServiceContext, key_id: str, *, actor: str) -> KeyView:
    """Lift a quarantine (a false report): the same secret works again. Audited."""
    async with changing_key(ctx, key_id, actor=actor) as change:
        if change.row.quarantined_at is None:
            raise KeyNotQuarantined()
        change.row.quarantined_at = None
        await change.record("key.released")
    return await get_key(ctx, key_id)


async def regenerate_key(ctx: ServiceContext, key_id: str, *, actor: str) -> CreatedKey:
    """New secret for the same id; the old secret stops working at once."""
    async with changing_key(ctx, key_id, actor=actor) as change:
        row = change.row
        _refuse_if_expired(ctx, row)
        issued = IssuedKey(row.id, new_secret_for(row.id))
        row.secret_hash = ctx.hasher.hash(issued.secret)
        # A new secret starts a new age.
        project = await change.session.get(Project, row.project_id)
        row.rotate_by = rotate_by(change.now, project.max_key_age_days if project else None)
        row.rotation_warned = 0
        row.quarantined_at = None  # the leaked secret is dead: the key may work again
        await change.record("key.regenerated")
    return await _created(ctx, row, issued)


async def rotate_key(
    ctx: ServiceContext, key_id: str, *, grace_seconds: int, actor: str
) -> CreatedKey:
    """A new key with the same settings; the old one keeps working for ``grace_seconds``."""
    async with changing_key(ctx, key_id, actor=actor) as change:
        session, old, now = change.session, change.row, change.now
        # Rotate the newest key of a chain, and only a live one: rotating a rotated key
        # would hand out a successor that inherits its predecessor's grace-period expiry.
        if old.rotated_to is not None:
            raise KeyAlreadyRotated(rotated_to=old.rotated_to)
        _refuse_if_expired(ctx, old)
        project = await session.get(Project, old.project_id)
        if project is None:  # pragma: no cover - FK guarantees it
            raise NotFound()
        issued = ctx.key_ids.issue(project.key_prefix, old.environment)
        spec = KeySpec(
            name=old.name,
            environment=old.environment,
            scopes=tuple(old.scopes),
            expires_at=old.expires_at,
            metadata=old.key_metadata,
            ip_allowlist=tuple(old.ip_allowlist),
            allowed_domains=tuple(old.allowed_domains),
            rate_limit=(old.rate_limit, old.rate_period_seconds)
            if old.rate_limit is not None and old.rate_period_seconds is not None
            else None,
        )
        new = _new_row(ctx, issued, spec, old.project_id, max_age_days=project.max_key_age_days)
        # TOTP and signing secrets carry over (clients keep their authenticator and signer);
        # each is re-sealed because the seal is bound to the key id.
        for field, purpose in (
            ("totp_secret_sealed", "totp"),
            ("signing_secret_sealed", "signing"),
        ):
            sealed = getattr(old, field)
            if sealed:
                plain = ctx.envelope.open(sealed, context=f"{purpose}:{old.id}")
                setattr(new, field, ctx.envelope.seal(plain, context=f"{purpose}:{new.id}"))
        new.totp_enabled = old.totp_enabled
        new.require_signature = old.require_signature
        new.rotated_from = old.id
        session.add(new)
        await session.flush()
        for cert in (
            await session.execute(select(KeyCertificate).where(KeyCertificate.key_id == old.id))
        ).scalars():
            session.add(
                KeyCertificate(
                    key_id=new.id,
                    fingerprint_sha256=cert.fingerprint_sha256,
                    subject=cert.subject,
                    not_before=cert.not_before,
                    not_after=cert.not_after,
                    pem=cert.pem,
                    created_at=now,
                )
            )
        grace_end = now + timedelta(seconds=grace_seconds)
        if old.expires_at is None or old.expires_at > grace_end:
            old.expires_at = grace_end
        old.rotated_to = new.id
        await change.record("key.rotated", new_key_id=new.id, grace_seconds=grace_seconds)
    ctx.cache.invalidate(new.id)
    return await _created(ctx, new, issued)
