"""The authorization server's long-lived parts, built once by the runtime: the signing
keys, the access-token maker and checker, and the issuer's URLs (RFC 8414)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from keyguard.context import ServiceContext
from keyguard.oauth.models import OAuthAccessToken, OAuthGrant, OAuthRefreshToken
from keyguard.oauth.origins import AppOrigins
from keyguard.oauth.revocation import RevokedTokens
from keyguard.oauth.scopes import format_scope
from keyguard.oauth.signing import ALG, SigningKeys
from keyguard.oauth.tokens import AccessTokens

CODE_TTL = 60  # RFC 9700 §4.2.1 asks for short-lived codes; 60 s at most (issue 13)
REFRESH_PREFIX = "kgrt_"

PATHS = {
    "authorization_endpoint": "/oauth/authorize",
    "token_endpoint": "/oauth/token",
    "revocation_endpoint": "/oauth/revoke",
    "introspection_endpoint": "/oauth/introspect",
    "jwks_uri": "/oauth/jwks",
}
METADATA_PATH = "/.well-known/oauth-authorization-server"


def digest(value: str) -> str:
    """How codes and refresh tokens are stored: SHA-256 (they are 256 random bits)."""
    return hashlib.sha256(value.encode()).hexdigest()


class OAuthServer:
    def __init__(self, ctx: ServiceContext) -> None:
        settings = ctx.settings
        ttl = settings.oauth_access_token_seconds
        self.keys = SigningKeys(ctx, token_ttl=ttl)
        self.tokens = AccessTokens(self.keys, lambda: ctx.settings, ttl=ttl)
        self.refresh_ttl = timedelta(days=settings.oauth_refresh_token_days)
        self.origins = AppOrigins(ctx)
        self.revoked = RevokedTokens(ctx)

    @property
    def issuer(self) -> str:
        """This server's URL (``KEYGUARD_PUBLIC_URL``, else the configured host and port):
        never a request's ``Host``, which the caller controls."""
        return self.tokens.issuer

    def metadata(self) -> dict[str, Any]:
        """RFC 8414 §2: everything a standard client needs to run every flow."""
        auth_methods = ["client_secret_basic", "client_secret_post"]
        return {
            "issuer": self.issuer,
            **{name: self.issuer + path for name, path in PATHS.items()},
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": [*auth_methods, "none"],
            "revocation_endpoint_auth_methods_supported": [*auth_methods, "none"],
            "introspection_endpoint_auth_methods_supported": auth_methods,
            "authorization_response_iss_parameter_supported": True,
            "access_token_signing_alg_values_supported": [ALG],
        }


class OAuthContext(ServiceContext, Protocol):
    oauth: OAuthServer


@dataclass(frozen=True, slots=True, repr=False)
class TokenResponse:
    """RFC 6749 §5.1."""

    access_token: str
    expires_in: int
    scope: str
    refresh_token: str | None

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": self.scope,
        }
        if self.refresh_token is not None:
            out["refresh_token"] = self.refresh_token
        return out

    def __repr__(self) -> str:
        return "TokenResponse(<redacted>)"


async def issue(
    ctx: OAuthContext,
    db: AsyncSession,
    grant: OAuthGrant,
    client_id: str,
    scopes: frozenset[str],
    *,
    now: datetime,
    with_refresh: bool,
) -> TokenResponse:
    """An access token (and a refresh token) of ``grant``, recorded in ``db``: for the
    grant's person (none: the client itself), in the grant's project."""
    issued = await ctx.oauth.tokens.issue(
        now=now.timestamp(),
        client_id=client_id,
        project_id=grant.project_id,
        scopes=scopes,
        subject=grant.account_id,
    )
    db.add(
        OAuthAccessToken(
            jti=issued.claims.jti,
            grant_id=grant.id,
            issued_at=now,
            expires_at=now + timedelta(seconds=ctx.oauth.tokens.ttl),
        )
    )
    refresh = None
    if with_refresh:
        refresh = REFRESH_PREFIX + secrets.token_urlsafe(32)
        db.add(
            OAuthRefreshToken(
                token_hash=digest(refresh),
                grant_id=grant.id,
                created_at=now,
                expires_at=now + ctx.oauth.refresh_ttl,
                used_at=None,
            )
        )
    return TokenResponse(
        access_token=issued.token,
        expires_in=ctx.oauth.tokens.ttl,
        scope=format_scope(scopes),
        refresh_token=refresh,
    )
