"""OAuth apps of a project: register, list, change, rotate the secret, delete.

The client secret is made here, returned once and kept as an HMAC under the key-hash
pepper (like key secrets: it is 256 random bits, so a slow hash would add nothing).
Deleting an app revokes every grant it holds, so its tokens stop working at once.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from keyguard.audit import service as audit
from keyguard.clock import utc_from_ts
from keyguard.context import ServiceContext
from keyguard.errors import NotFound, ValidationFailed
from keyguard.ids import new_id
from keyguard.oauth import revocation
from keyguard.oauth.models import OAuthApp
from keyguard.projects.models import Project

MAX_APPS_PER_PROJECT = 100
SECRET_PREFIX = "kgcs_"  # noqa: S105 - a prefix, not a secret


@dataclass(frozen=True, slots=True)
class AppSpec:
    name: str
    public: bool
    redirect_uris: tuple[str, ...]
    allowed_domains: tuple[str, ...]
    scopes: tuple[str, ...]
    role_scopes: Mapping[str, Sequence[str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AppView:
    id: str
    project_id: str
    client_id: str
    name: str
    public: bool
    redirect_uris: tuple[str, ...]
    allowed_domains: tuple[str, ...]
    scopes: tuple[str, ...]
    role_scopes: Mapping[str, tuple[str, ...]]
    created_at: datetime
    updated_at: datetime
    # The replaced secret is still accepted until then (a rotation with overlap).
    previous_secret_until: datetime | None

    @classmethod
    def of(cls, row: OAuthApp) -> AppView:
        return cls(
            id=row.id,
            project_id=row.project_id,
            client_id=row.client_id,
            name=row.name,
            public=row.public,
            redirect_uris=tuple(row.redirect_uris),
            allowed_domains=tuple(row.allowed_domains),
            scopes=tuple(row.scopes),
            role_scopes={k: tuple(v) for k, v in row.role_scopes.items()},
            created_at=row.created_at,
            updated_at=row.updated_at,
            previous_secret_until=row.previous_secret_until,
        )


@dataclass(frozen=True, slots=True, repr=False)
class CreatedApp:
    app: AppView
    client_secret: str | None  # confidential apps only; shown once

    def __repr__(self) -> str:
        return f"CreatedApp(app={self.app.id!r}, client_secret=<redacted>)"


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _check_spec(spec: AppSpec) -> None:
    if not spec.redirect_uris and not spec.public and not spec.scopes:
        raise ValidationFailed("an app needs redirect URIs (code flow) or scopes")
    unknown = set(spec.role_scopes) - {"owner", "admin", "developer", "viewer"}
    if unknown:
        raise ValidationFailed(f"role_scopes names unknown roles: {', '.join(sorted(unknown))}")
    for role, granted in spec.role_scopes.items():
        extra = set(granted) - set(spec.scopes)
        if extra:
            raise ValidationFailed(
                f"role_scopes[{role}] names scopes the app does not have: "
                + ", ".join(sorted(extra))
            )


async def create_app(
    ctx: ServiceContext, project_id: str, spec: AppSpec, *, actor: str
) -> CreatedApp:
    _check_spec(spec)
    now = utc_from_ts(ctx.clock.now())
    secret = None if spec.public else new_secret()
    async with ctx.transaction() as db:
        if await db.get(Project, project_id) is None:
            raise NotFound()
        if len(await _live_apps(db, project_id)) >= MAX_APPS_PER_PROJECT:
            raise ValidationFailed(f"a project has at most {MAX_APPS_PER_PROJECT} OAuth apps")
        row = OAuthApp(
            id=new_id("oapp"),
            project_id=project_id,
            client_id=new_id("client"),
            name=spec.name,
            public=spec.public,
            secret_hash=None if secret is None else ctx.hasher.hash(secret),
            previous_secret_hash=None,
            previous_secret_until=None,
            redirect_uris=list(spec.redirect_uris),
            allowed_domains=list(spec.allowed_domains),
            scopes=list(spec.scopes),
            role_scopes={k: list(v) for k, v in spec.role_scopes.items()},
            created_at=now,
            updated_at=now,
            deleted_at=None,
        )
        db.add(row)
        await db.flush()
        await audit.record(
            db,
            at=now,
            actor=actor,
            action="oauth.app_created",
            target=row.id,
            project_id=project_id,
            data={
                "client_id": row.client_id,
                "public": row.public,
                "redirect_uris": row.redirect_uris,
                "scopes": row.scopes,
            },
        )
        return CreatedApp(AppView.of(row), secret)


async def _live_apps(db: AsyncSession, project_id: str) -> list[OAuthApp]:
    rows = await db.execute(
        select(OAuthApp)
        .where(OAuthApp.project_id == project_id, OAuthApp.deleted_at.is_(None))
        .order_by(OAuthApp.created_at, OAuthApp.id)
    )
    return list(rows.scalars())


async def _app(db: AsyncSession, project_id: str, app_id: str) -> OAuthApp:
    row = await db.get(OAuthApp, app_id)
    if row is None or row.project_id != project_id or row.deleted_at is not None:
        raise NotFound()
    return row


async def list_apps(ctx: ServiceContext, project_id: str) -> list[AppView]:
    async with ctx.sessions() as db:
        if await db.get(Project, project_id) is None:
            raise NotFound()
        return [AppView.of(row) for row in await _live_apps(db, project_id)]


async def get_app(ctx: ServiceContext, project_id: str, app_id: str) -> AppView:
    async with ctx.sessions() as db:
        return AppView.of(await _app(db, project_id, app_id))


async def update_app(
    ctx: ServiceContext, project_id: str, app_id: str, changes: Mapping[str, Any], *, actor: str
) -> AppView:
    """Change any of name, redirect_uris, allowed_domains, scopes, role_scopes (one audit
    event naming what changed). Scopes taken away stay in tokens already issued until
    they expire; revoke the app's grants to end them sooner."""
    now = utc_from_ts(ctx.clock.now())
    async with ctx.transaction() as db:
        row = await _app(db, project_id, app_id)
        view = AppView.of(row)
        spec = AppSpec(
            name=changes.get("name", view.name),
            public=view.public,
            redirect_uris=tuple(changes.get("redirect_uris", view.redirect_uris)),
            allowed_domains=tuple(changes.get("allowed_domains", view.allowed_domains)),
            scopes=tuple(changes.get("scopes", view.scopes)),
            role_scopes=changes.get("role_scopes", view.role_scopes),
        )
        _check_spec(spec)
        changed = sorted(k for k in changes if changes[k] != getattr(view, k))
        if not changed:
            return view
        row.name = spec.name
        row.redirect_uris = list(spec.redirect_uris)
        row.allowed_domains = list(spec.allowed_domains)
        row.scopes = list(spec.scopes)
        row.role_scopes = {k: list(v) for k, v in spec.role_scopes.items()}
        row.updated_at = now
        await audit.record(
            db,
            at=now,
            actor=actor,
            action="oauth.app_updated",
            target=row.id,
            project_id=project_id,
            data={"changed": changed},
        )
        return AppView.of(row)


async def rotate_secret(
    ctx: ServiceContext,
    project_id: str,
    app_id: str,
    *,
    actor: str,
    grace_seconds: int = 0,
) -> CreatedApp:
    """A new client secret (shown once); the old one keeps working ``grace_seconds``."""
    if not 0 <= grace_seconds <= 7 * 86400:
        raise ValidationFailed("grace_seconds must be between 0 and 604800 (7 days)")
    now = utc_from_ts(ctx.clock.now())
    secret = new_secret()
    async with ctx.transaction() as db:
        row = await _app(db, project_id, app_id)
        if row.public:
            raise ValidationFailed("a public app has no client secret")
        row.previous_secret_hash = row.secret_hash if grace_seconds else None
        row.previous_secret_until = (
            now + timedelta(seconds=grace_seconds) if grace_seconds else None
        )
        row.secret_hash = ctx.hasher.hash(secret)
        row.updated_at = now
        await audit.record(
            db,
            at=now,
            actor=actor,
            action="oauth.app_secret_rotated",
            target=row.id,
            project_id=project_id,
            data={"grace_seconds": grace_seconds},
        )
        return CreatedApp(AppView.of(row), secret)


async def delete_app(ctx: ServiceContext, project_id: str, app_id: str, *, actor: str) -> None:
    now = utc_from_ts(ctx.clock.now())
    async with ctx.transaction() as db:
        row = await _app(db, project_id, app_id)
        row.deleted_at = now
        row.secret_hash = row.previous_secret_hash = None
        jtis = await revocation.revoke_app_grants(db, row.id, now, reason="app_deleted")
        await audit.record(
            db,
            at=now,
            actor=actor,
            action="oauth.app_deleted",
            target=row.id,
            project_id=project_id,
            data={"client_id": row.client_id},
        )
        # Published before the commit: if it fails, nothing is deleted; if the commit
        # fails, tokens refused early are the safe side.
        await revocation.publish(ctx, jtis)
