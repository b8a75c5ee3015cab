"""The apps a person let act for them (Account > Apps), and taking that back.

An app is listed while one of the person's grants to it is alive (not revoked, with a
refresh token not yet spent or expired, or an access token not yet expired). Taking it
back revokes every grant the person gave that app: its tokens are refused by every door
at once, and the project's audit log and webhooks hear of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, exists, or_, select

from keyguard.audit import service as audit
from keyguard.clock import utc_from_ts
from keyguard.context import ServiceContext
from keyguard.oauth import revocation
from keyguard.oauth.models import OAuthAccessToken, OAuthApp, OAuthGrant, OAuthRefreshToken
from keyguard.projects.models import Project


@dataclass(frozen=True, slots=True)
class ConnectedApp:
    app_id: str
    name: str
    project_name: str
    scopes: tuple[str, ...]  # every scope the person granted it, across consents
    since: datetime  # the first live consent


def _live(now: datetime) -> ColumnElement[bool]:
    refresh = exists().where(
        OAuthRefreshToken.grant_id == OAuthGrant.id,
        OAuthRefreshToken.used_at.is_(None),
        OAuthRefreshToken.expires_at > now,
    )
    access = exists().where(
        OAuthAccessToken.grant_id == OAuthGrant.id, OAuthAccessToken.expires_at > now
    )
    return or_(refresh, access)


async def connected_apps(ctx: ServiceContext, account_id: str) -> list[ConnectedApp]:
    now = utc_from_ts(ctx.clock.now())
    async with ctx.sessions() as db:
        rows = await db.execute(
            select(OAuthGrant, OAuthApp.name, Project.name)
            .join(OAuthApp, OAuthApp.id == OAuthGrant.app_id)
            .join(Project, Project.id == OAuthGrant.project_id)
            .where(
                OAuthGrant.account_id == account_id,
                OAuthGrant.revoked_at.is_(None),
                OAuthApp.deleted_at.is_(None),
                _live(now),
            )
            .order_by(OAuthGrant.created_at)
        )
        found: dict[str, ConnectedApp] = {}
        for grant, app_name, project_name in rows.all():
            seen = found.get(grant.app_id)
            scopes = set(grant.scopes) | set(seen.scopes if seen else ())
            found[grant.app_id] = ConnectedApp(
                app_id=grant.app_id,
                name=app_name,
                project_name=project_name,
                scopes=tuple(sorted(scopes)),
                since=seen.since if seen else grant.created_at,
            )
    return list(found.values())


async def disconnect(ctx: ServiceContext, account_id: str, app_id: str) -> bool:
    """Revoke every grant ``account_id`` gave ``app_id``; False if there was none."""
    now = utc_from_ts(ctx.clock.now())
    async with ctx.transaction() as db:
        grants = list(
            (
                await db.execute(
                    select(OAuthGrant).where(
                        OAuthGrant.account_id == account_id,
                        OAuthGrant.app_id == app_id,
                        OAuthGrant.revoked_at.is_(None),
                    )
                )
            ).scalars()
        )
        if not grants:
            return False
        live = await revocation.revoke_grants(
            db, [g.id for g in grants], now, reason="consent_revoked"
        )
        app = await db.get(OAuthApp, app_id)
        await audit.record(
            db,
            at=now,
            actor=account_id,
            action="oauth.consent_revoked",
            target=app_id,
            project_id=grants[0].project_id,
            data={"client_id": app.client_id if app else None},
        )
        await revocation.publish(ctx, live)
    return True
