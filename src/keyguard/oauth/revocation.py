"""Revoking tokens: grants and access tokens in the database, and their ``jti`` in the
shared state.

An access token is checked without a query, so a revocation reaches the doors two ways:

- at once, through the shared vault (its ``jti`` kept until the token would have expired
  anyway): every door of this process, and of every instance when Redis is configured;
- durably, through ``oauth_access_tokens.revoked_at``, which every process reads back
  (:class:`RevokedTokens`, at most once a second): a separate ``keyguard gateway``
  without Redis, and any process after a restart (the in-process vault does not survive
  one), refuse the token too.

Revoking a grant (a refresh-token family) marks it, which stops its refresh tokens, and
marks and publishes each of its live access tokens, before the commit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from keyguard.clock import utc_from_ts
from keyguard.context import ServiceContext
from keyguard.oauth.models import OAuthAccessToken, OAuthGrant
from keyguard.state.protocols import StateStores

PREFIX = "oauth:revoked:"
POLL_EVERY = 1.0
# Revocations are read back from a little before the last read: instances' clocks (which
# stamp revoked_at) may differ by this much without one being missed.
CLOCK_MARGIN = 60.0

LiveTokens = list[tuple[str, datetime]]  # (jti, expires_at)


async def revoke_grants(
    db: AsyncSession, grant_ids: Sequence[str], now: datetime, *, reason: str
) -> LiveTokens:
    """Mark the grants and their live access tokens revoked; the tokens to publish."""
    if not grant_ids:
        return []
    await db.execute(
        update(OAuthGrant)
        .where(OAuthGrant.id.in_(grant_ids), OAuthGrant.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
    )
    live = OAuthAccessToken.grant_id.in_(grant_ids), OAuthAccessToken.expires_at > now
    await db.execute(
        update(OAuthAccessToken)
        .where(*live, OAuthAccessToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    rows = await db.execute(select(OAuthAccessToken.jti, OAuthAccessToken.expires_at).where(*live))
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


async def revoke_access_token(ctx: ServiceContext, jti: str, expires_at: float) -> None:
    """One access token (RFC 7009 for an access token): recorded, then published."""
    now = utc_from_ts(ctx.clock.now())
    async with ctx.transaction() as db:
        await db.execute(
            update(OAuthAccessToken)
            .where(OAuthAccessToken.jti == jti, OAuthAccessToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        await publish(ctx, [(jti, utc_from_ts(expires_at))])


async def publish(ctx: ServiceContext, tokens: LiveTokens) -> None:
    now = utc_from_ts(ctx.clock.now())
    for jti, expires in tokens:
        ttl = (expires - now).total_seconds()
        if ttl > 0:
            await ctx.state.vault.put(PREFIX + jti, "1", ttl + 1)


class RevokedTokens:
    """Is this ``jti`` revoked? The shared vault first, then the revocations this
    process read back from the database (re-read at most every ``POLL_EVERY`` seconds,
    only those stamped since the last read)."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx
        self._state: StateStores = ctx.state
        self._revoked: dict[str, float] = {}  # jti -> expires at (epoch seconds)
        self._read_at: float | None = None
        self._since: datetime | None = None
        self._lock = asyncio.Lock()

    async def contains(self, jti: str) -> bool:
        if await self._state.vault.peek(PREFIX + jti) is not None:
            return True
        now = self._ctx.clock.now()
        if self._read_at is None or now - self._read_at >= POLL_EVERY:
            await self._read(now)
        return jti in self._revoked

    async def _read(self, now: float) -> None:
        async with self._lock:
            if self._read_at is not None and now - self._read_at < POLL_EVERY:
                return  # read by the caller this one queued behind
            at = utc_from_ts(now)
            query = select(OAuthAccessToken.jti, OAuthAccessToken.expires_at).where(
                OAuthAccessToken.revoked_at.is_not(None), OAuthAccessToken.expires_at > at
            )
            if self._since is not None:
                query = query.where(OAuthAccessToken.revoked_at >= self._since)
            async with self._ctx.sessions() as db:
                rows = (await db.execute(query)).all()
            if any(expires <= now for expires in self._revoked.values()):
                self._revoked = {j: e for j, e in self._revoked.items() if e > now}
            for jti, expires in rows:
                self._revoked[jti] = expires.timestamp()
            self._since = at - timedelta(seconds=CLOCK_MARGIN)
            self._read_at = now
