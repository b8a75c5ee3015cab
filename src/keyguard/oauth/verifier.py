"""Access tokens at the doors: the policy engine's :class:`TokenVerifier` (CONTRACT §8).

The middleware, the verify API and the gateway hand a Bearer JWT here through the same
engine, so a refused token is the same problem+json everywhere. The checks, cheapest
first: HTTPS; the signature and claims (:mod:`keyguard.oauth.tokens`), done once per
token and remembered until it expires (a JWT cannot change, and checking an ES256
signature costs ~90 µs: what dominated a token request); expiry again on every use;
the ``jti`` against the revoked tokens (the shared state: every instance at once; the
database, read back at most once a second: every process, after a restart too); the
app still live, and its allowed domains against ``Origin`` when a browser sends one;
the scopes the operation needs.
"""

from __future__ import annotations

from collections.abc import Iterable

from keyguard.clock import Clock
from keyguard.engine.cache import ReadThroughCache
from keyguard.engine.facts import AccessToken, RequestFacts
from keyguard.engine.principals import TokenPrincipal
from keyguard.errors import HttpsRequired, OriginNotAllowed, ScopeMissing
from keyguard.oauth.clients import ClientRecord
from keyguard.oauth.errors import InvalidToken, TokenExpired, TokenRevoked
from keyguard.oauth.revocation import RevokedTokens
from keyguard.oauth.tokens import AccessClaims, AccessTokens

# Verified tokens remembered (each ~1 KB with its string); cleared when full.
VERIFIED_KEPT = 10_000


class AccessTokenVerifier:
    def __init__(
        self,
        tokens: AccessTokens,
        revoked: RevokedTokens,
        clock: Clock,
        clients: ReadThroughCache[ClientRecord],
    ) -> None:
        self._tokens = tokens
        self._revoked = revoked
        self._clock = clock
        self._clients = clients
        self._verified: dict[str, AccessClaims] = {}

    async def claims(self, token: str) -> AccessClaims:
        """The verified claims of a live (unexpired) token, revoked or not."""
        now = self._clock.now()
        claims = self._verified.get(token)
        if claims is None:
            claims = await self._tokens.verify(token, now=now)
            if len(self._verified) >= VERIFIED_KEPT:
                self._verified.clear()
            self._verified[token] = claims
        elif claims.expires_at <= now:
            del self._verified[token]
            raise TokenExpired()
        return claims

    async def verify(
        self, token: AccessToken, facts: RequestFacts, *, required_scopes: Iterable[str]
    ) -> TokenPrincipal:
        if not facts.https:
            raise HttpsRequired()
        claims = await self.claims(token.token)
        if await self._revoked.contains(claims.jti):
            raise TokenRevoked()
        client = await self._clients.get(claims.client_id)
        if client is None or client.project_id != claims.project_id:
            raise InvalidToken()  # the app was deleted (its tokens are revoked too)
        if facts.origin is not None and not client.domains.allows_origin(facts.origin, None):
            raise OriginNotAllowed("requests from this origin are not allowed for this app")
        for scope in required_scopes:
            if scope not in claims.scopes:
                raise ScopeMissing()
        return TokenPrincipal(
            token_id=claims.jti,
            client_id=claims.client_id,
            project_id=claims.project_id,
            scopes=claims.scopes,
            subject=claims.subject,
        )
