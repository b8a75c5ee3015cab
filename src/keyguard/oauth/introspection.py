"""Revocation (RFC 7009) and introspection (RFC 7662): what a client may learn about, or
end, a token it holds. Both take either kind of token; the hint only orders the tries.

A client only reaches tokens of its own: revoking another client's token does nothing
(and still answers 200, so nothing is learnt), and introspection answers exactly
``{"active": false}`` for anything that is not a live token of the caller's project.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from keyguard.clock import utc_from_ts
from keyguard.engine.credentials import looks_like_jwt
from keyguard.errors import KeyguardError
from keyguard.oauth import revocation
from keyguard.oauth.clients import ClientRecord
from keyguard.oauth.models import OAuthApp, OAuthGrant, OAuthRefreshToken
from keyguard.oauth.server import OAuthContext, digest
from keyguard.oauth.tokens import AccessClaims

INACTIVE: dict[str, Any] = {"active": False}


async def _access_claims(ctx: OAuthContext, token: str) -> AccessClaims | None:
    if not looks_like_jwt(token):
        return None
    try:
        return await ctx.oauth.tokens.verify(token, now=ctx.clock.now())
    except KeyguardError:  # not ours, tampered or expired: nothing to revoke or report
        return None


async def _refresh(
    db: AsyncSession, token: str
) -> tuple[OAuthRefreshToken, OAuthGrant] | tuple[None, None]:
    row = await db.get(OAuthRefreshToken, digest(token))
    grant = None if row is None else await db.get(OAuthGrant, row.grant_id)
    if row is None or grant is None:
        return None, None
    return row, grant


async def revoke(ctx: OAuthContext, client: ClientRecord, token: str) -> None:
    claims = await _access_claims(ctx, token)
    if claims is not None:
        if claims.client_id == client.client_id:
            await revocation.revoke_access_token(ctx, claims.jti, claims.expires_at)
        return
    now = utc_from_ts(ctx.clock.now())
    async with ctx.transaction() as db:
        row, grant = await _refresh(db, token)
        if row is None or grant is None or grant.app_id != client.app_id:
            return
        # RFC 7009 §2.1: revoking a refresh token ends the access tokens of its grant.
        live = await revocation.revoke_grants(db, [grant.id], now, reason="revoked_by_client")
        await revocation.publish(ctx, live)


async def introspect(ctx: OAuthContext, client: ClientRecord, token: str) -> dict[str, Any]:
    claims = await _access_claims(ctx, token)
    if claims is not None:
        if claims.project_id != client.project_id:
            return INACTIVE
        if await ctx.oauth.revoked.contains(claims.jti):
            return INACTIVE
        tokens = ctx.oauth.tokens
        out: dict[str, Any] = {
            "active": True,
            "token_type": "Bearer",
            "scope": " ".join(sorted(claims.scopes)),
            "client_id": claims.client_id,
            "sub": claims.subject or claims.client_id,
            "exp": claims.expires_at,
            "iat": claims.issued_at,
            "nbf": claims.issued_at,
            "jti": claims.jti,
            "iss": tokens.issuer,
            "aud": tokens.audience,
        }
        return out
    now = utc_from_ts(ctx.clock.now())
    async with ctx.sessions() as db:
        row, grant = await _refresh(db, token)
        if row is None or grant is None or grant.project_id != client.project_id:
            return INACTIVE
        if row.used_at is not None or grant.revoked_at is not None or row.expires_at <= now:
            return INACTIVE
        app = await db.get(OAuthApp, grant.app_id)
        if app is None or app.deleted_at is not None:
            return INACTIVE
        return {
            "active": True,
            "token_type": "refresh_token",
            "scope": " ".join(sorted(grant.scopes)),
            "client_id": app.client_id,
            "sub": grant.account_id or app.client_id,
            "exp": int(row.expires_at.timestamp()),
            "iat": int(row.created_at.timestamp()),
            "iss": ctx.oauth.tokens.issuer,
        }
