"""The token endpoint's grants (RFC 6749 §4), one small class each, registered by
``grant_type`` in :data:`GRANTS` (the shape of Authlib's ``grants/``).

Refused on purpose (RFC 9700 §2.4, §2.1.2): the resource owner password grant and the
implicit flow; every other unknown type is ``unsupported_grant_type`` too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import datetime
from typing import ClassVar, Protocol

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from keyguard.accounts.models import Membership
from keyguard.audit import service as audit
from keyguard.clock import utc_from_ts
from keyguard.ids import new_id
from keyguard.oauth import revocation
from keyguard.oauth.clients import ClientRecord
from keyguard.oauth.errors import InvalidGrant, InvalidRequest, InvalidScope, UnauthorizedClient
from keyguard.oauth.models import OAuthCode, OAuthGrant, OAuthRefreshToken
from keyguard.oauth.scopes import parse_scope, role_grants
from keyguard.oauth.server import OAuthContext, TokenResponse, digest, issue

# RFC 7636 §4.1: 43-128 characters of [A-Z a-z 0-9 - . _ ~].
VERIFIER_RE = re.compile(r"[A-Za-z0-9\-._~]{43,128}")


def s256(verifier: str) -> str:
    return (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )


class Grant(Protocol):
    grant_type: ClassVar[str]

    async def exchange(
        self, ctx: OAuthContext, client: ClientRecord, form: Mapping[str, str]
    ) -> TokenResponse: ...


async def _role(db: AsyncSession, project_id: str, account_id: str) -> str | None:
    row = await db.get(Membership, (project_id, account_id))
    return None if row is None else row.role


async def new_grant(
    db: AsyncSession,
    client: ClientRecord,
    account_id: str | None,
    scopes: frozenset[str],
    now: datetime,
) -> OAuthGrant:
    grant = OAuthGrant(
        id=new_id("ogr"),
        app_id=client.app_id,
        project_id=client.project_id,
        account_id=account_id,
        scopes=sorted(scopes),
        created_at=now,
        revoked_at=None,
        revoked_reason=None,
    )
    db.add(grant)
    await db.flush()
    return grant


async def _reused(
    ctx: OAuthContext,
    db: AsyncSession,
    client: ClientRecord,
    grant_id: str | None,
    action: str,
    now: datetime,
) -> None:
    """A code or refresh token presented again: revoke what it issued, say so."""
    live = await revocation.revoke_grants(db, [grant_id] if grant_id else [], now, reason=action)
    await audit.record(
        db,
        at=now,
        actor=f"client:{client.client_id}",
        action=f"oauth.{action}",
        target=grant_id,
        project_id=client.project_id,
        data={"client_id": client.client_id},
    )
    await revocation.publish(ctx, live)


class AuthorizationCodeGrant:
    """RFC 6749 §4.1.3 with PKCE (RFC 7636, S256 only). A code works once; presented
    again, it revokes what its first exchange issued (RFC 9700 §4.2.1)."""

    grant_type: ClassVar[str] = "authorization_code"

    async def exchange(
        self, ctx: OAuthContext, client: ClientRecord, form: Mapping[str, str]
    ) -> TokenResponse:
        code, verifier = form.get("code", ""), form.get("code_verifier", "")
        redirect_uri = form.get("redirect_uri", "")
        if not code:
            raise InvalidRequest("code is required")
        if not VERIFIER_RE.fullmatch(verifier):
            raise InvalidGrant("a PKCE code_verifier of 43-128 characters is required")
        now = utc_from_ts(ctx.clock.now())
        async with ctx.transaction() as db:
            row = await db.get(OAuthCode, digest(code))
            # Another client's code is not this client's to spend (nor to burn).
            if row is None or row.app_id != client.app_id:
                raise InvalidGrant()
            if row.used_at is None:
                # Checked before the code is spent: a wrong verifier or URI changes nothing.
                if row.expires_at <= now:
                    raise InvalidGrant("the authorization code has expired")
                # PKCE binds the code to its client's session (OAuth 2.1 drops the
                # parameter here); sent, it must be the authorization request's.
                if redirect_uri and row.redirect_uri != redirect_uri:
                    raise InvalidGrant("redirect_uri differs from the authorization request's")
                if not hmac.compare_digest(s256(verifier), row.code_challenge):
                    raise InvalidGrant("the PKCE code_verifier does not match")
            # Spent in the same transaction that issues: a racing second exchange waits
            # for this one (row lock, or SQLite's single writer) and then finds it used.
            spent = await db.execute(
                update(OAuthCode)
                .where(OAuthCode.code_hash == row.code_hash, OAuthCode.used_at.is_(None))
                .values(used_at=now)
            )
            if spent.rowcount == 1:  # type: ignore[attr-defined]
                return await self._issue(ctx, db, client, row, now)
            await db.refresh(row)
            await _reused(ctx, db, client, row.grant_id, "code_reused", now)
        raise InvalidGrant()  # after the commit of what the reuse revoked

    async def _issue(
        self,
        ctx: OAuthContext,
        db: AsyncSession,
        client: ClientRecord,
        row: OAuthCode,
        now: datetime,
    ) -> TokenResponse:
        role = await _role(db, client.project_id, row.account_id)
        if role is None:  # removed from the project since consenting
            raise InvalidGrant()
        scopes = frozenset(row.scopes) & role_grants(role, client.scopes, client.role_scopes)
        grant = await new_grant(db, client, row.account_id, scopes, now)
        row.grant_id = grant.id
        return await issue(ctx, db, grant, client.client_id, scopes, now=now, with_refresh=True)


class RefreshTokenGrant:
    """RFC 6749 §6, rotated on every use (RFC 9700 §4.14.2): the old token is spent, and
    a spent one presented again revokes its whole family."""

    grant_type: ClassVar[str] = "refresh_token"

    async def exchange(
        self, ctx: OAuthContext, client: ClientRecord, form: Mapping[str, str]
    ) -> TokenResponse:
        token = form.get("refresh_token", "")
        if not token:
            raise InvalidRequest("refresh_token is required")
        asked = parse_scope(form.get("scope"))
        now = utc_from_ts(ctx.clock.now())
        async with ctx.transaction() as db:
            row = await db.get(OAuthRefreshToken, digest(token))
            grant = None if row is None else await db.get(OAuthGrant, row.grant_id)
            # Bound to its client: another client's token is unknown here.
            if row is None or grant is None or grant.app_id != client.app_id:
                raise InvalidGrant()
            if grant.revoked_at is not None or row.expires_at <= now:
                raise InvalidGrant()
            spent = await db.execute(
                update(OAuthRefreshToken)
                .where(
                    OAuthRefreshToken.token_hash == row.token_hash,
                    OAuthRefreshToken.used_at.is_(None),
                )
                .values(used_at=now)
            )
            reused = spent.rowcount != 1  # type: ignore[attr-defined]
            if reused:
                await _reused(ctx, db, client, grant.id, "refresh_token_reused", now)
            else:
                scopes = frozenset(grant.scopes)
                if grant.account_id is not None:
                    # What the person's role grants today: a role lowered since the
                    # consent lowers the next token too.
                    role = await _role(db, grant.project_id, grant.account_id)
                    if role is None:
                        raise InvalidGrant()
                    scopes &= role_grants(role, client.scopes, client.role_scopes)
                if asked is not None:
                    if not asked <= frozenset(grant.scopes):
                        raise InvalidScope("a refresh may only narrow the grant's scopes")
                    scopes &= asked
                return await issue(
                    ctx, db, grant, client.client_id, scopes, now=now, with_refresh=True
                )
        raise InvalidGrant()  # reused: the family's revocation is committed


class ClientCredentialsGrant:
    """RFC 6749 §4.4: a confidential client acting for itself; no refresh token."""

    grant_type: ClassVar[str] = "client_credentials"

    async def exchange(
        self, ctx: OAuthContext, client: ClientRecord, form: Mapping[str, str]
    ) -> TokenResponse:
        if client.public:
            raise UnauthorizedClient("a public client cannot use client credentials")
        asked = parse_scope(form.get("scope"))
        allowed = frozenset(client.scopes)
        if asked is not None and not asked <= allowed:
            raise InvalidScope()
        scopes = allowed if asked is None else asked
        now = utc_from_ts(ctx.clock.now())
        async with ctx.transaction() as db:
            grant = await new_grant(db, client, None, scopes, now)
            return await issue(
                ctx, db, grant, client.client_id, scopes, now=now, with_refresh=False
            )


GRANTS: dict[str, Grant] = {
    grant.grant_type: grant
    for grant in (AuthorizationCodeGrant(), RefreshTokenGrant(), ClientCredentialsGrant())
}
