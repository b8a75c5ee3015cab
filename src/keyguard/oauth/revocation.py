"""Revoking tokens: grants in the database, access tokens in the shared state.

An access token is checked without the database, so revoking one means putting its
``jti`` in the shared vault until the token would have expired anyway: every instance
and every door refuses it from then on (Redis when configured; in process otherwise).
Revoking a grant (a refresh-token family) marks it in the database, which stops its
refresh tokens, and publishes the ``jti`` of each of its live access tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from keyguard.clock import utc_from_ts
from keyguard.context import ServiceContext
from keyguard.oauth.models import OAuthAccessToken, OAuthGrant
from keyguard.state.protocols import StateStores

PREFIX = "oauth:revoked:"

LiveTokens = list[tuple[str, datetime]]  # (jti, expires_at)


async def revoke_grants(
    db: AsyncSession, grant_ids: Sequence[str], now: datetime, *, reason: str
) -> LiveTokens:
    """Mark the grants revoked (those not already) and return their live access tokens."""
    if not grant_ids:
        return []
    await db.execute(
        update(OAuthGrant)
        .where(OAuthGrant.id.in_(grant_ids), OAuthGrant.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
    )
    rows = await db.execute(
        select(OAuthAccessToken.jti, OAuthAccessToken.expires_at).where(
            OAuthAccessToken.grant_id.in_(grant_ids), OAuthAccessToken.expires_at > now
        )
    )
    return [(jti, expires) for jti, expires in rows.all()]


async def revoke_app_grants(
    db: AsyncSession, app_id: str, now: datetime, *, reason: str
) -> LiveTokens:
    ids = (await db.execute(select(OAuthGrant.id).where(OAuthGrant.app_id == app_id))).scalars()
    return await revoke_grants(db, list(ids), now, reason=reason)


async def revoke_person(
    ctx: ServiceContext, db: AsyncSession, project_id: str, account_id: str, *, reason: str
) -> None:
    """End every grant a person gave in a project (they left it): in ``db``'s transaction,
    their access tokens refused everywhere before it commits."""
    now = utc_from_ts(ctx.clock.now())
    ids = await db.execute(
        select(OAuthGrant.id).where(
            OAuthGrant.project_id == project_id, OAuthGrant.account_id == account_id
        )
    )
    await publish(ctx, await revoke_grants(db, list(ids.scalars()), now, reason=reason))


async def publish(ctx: ServiceContext, tokens: LiveTokens) -> None:
    now = utc_from_ts(ctx.clock.now())
    for jti, expires in tokens:
        await revoke_jti(ctx.state, jti, (expires - now).total_seconds())


async def revoke_jti(state: StateStores, jti: str, ttl_seconds: float) -> None:
    if ttl_seconds > 0:
        await state.vault.put(PREFIX + jti, "1", ttl_seconds + 1)


async def is_revoked(state: StateStores, jti: str) -> bool:
    return await state.vault.peek(PREFIX + jti) is not None
