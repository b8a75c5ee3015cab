"""The keys that sign access tokens: ES256, the private half sealed with the master key.

ES256 rather than Ed25519: every JOSE library a resource server may use verifies it
(RFC 9068 names no algorithm; RS256 keys are large and slow to make).

Every instance reads the keys from the database and again every ``RELOAD_EVERY``
seconds. A rotation publishes the new key at once but signs with it only
``PROPAGATION`` seconds later, when every instance (and every resource server caching
the JWKS for less than that) knows it; until then the old key signs. A retired key
stays published until every token it signed has expired, so no token outlives the key
that checks it. A ``kid`` an instance does not know makes it reload at most once a
second, so a stream of forged ``kid`` values costs next to no queries.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from joserfc.jwk import ECKey, KeyParameters, KeySet
from sqlalchemy import select

from keyguard.audit import service as audit
from keyguard.clock import utc_from_ts
from keyguard.context import ServiceContext
from keyguard.ids import new_id
from keyguard.oauth.models import OAuthSigningKey

ALG = "ES256"
RELOAD_EVERY = 10.0
PROPAGATION = 2 * RELOAD_EVERY
UNKNOWN_KID_RELOAD = 1.0
MAX_TOKEN_SECONDS = 86_400  # KEYGUARD_OAUTH_ACCESS_TOKEN_SECONDS' upper bound


@dataclass(frozen=True, slots=True, repr=False)
class SigningKey:
    kid: str
    private: ECKey

    def __repr__(self) -> str:
        return f"SigningKey(kid={self.kid!r}, <private half redacted>)"


def _params(kid: str) -> KeyParameters:
    return {"kid": kid, "alg": ALG, "use": "sig"}


def _context(kid: str) -> str:
    return f"oauth-signing:{kid}"


def _new_row(ctx: ServiceContext) -> OAuthSigningKey:
    kid = new_id("sk")
    key = ECKey.generate_key("P-256", parameters=_params(kid), private=True)
    pem = key.as_pem(private=True).decode()
    return OAuthSigningKey(
        kid=kid,
        alg=ALG,
        public_jwk=key.as_dict(private=False),
        private_sealed=ctx.envelope.seal(pem, context=_context(kid)),
        created_at=utc_from_ts(ctx.clock.now()),
        retired_at=None,
    )


class SigningKeys:
    """The signing key and the published verification keys, for one instance."""

    def __init__(self, ctx: ServiceContext, *, token_ttl: float) -> None:
        self._ctx = ctx
        self._token_ttl = token_ttl
        self._signing: SigningKey | None = None
        self._published: list[dict[str, Any]] = []
        self._verifying = KeySet([])
        self._loaded_at: float | None = None
        self._lock = asyncio.Lock()

    async def signing_key(self) -> SigningKey:
        await self.reload()
        if self._signing is None:
            await self._create_first()
            await self.reload(force=True)
        assert self._signing is not None  # made above, or by another instance
        return self._signing

    async def jwks(self) -> dict[str, Any]:
        """The JWKS document (RFC 7517): every key whose tokens may still be alive."""
        await self.signing_key()
        return {"keys": list(self._published)}

    async def verification_keys(self, kid: str | None) -> KeySet:
        """The published keys; reloaded first when ``kid`` is one this instance has not
        seen (at most once a second)."""
        await self.reload()
        if kid is not None and not self._knows(kid):
            await self.reload(within=UNKNOWN_KID_RELOAD)
        return self._verifying

    def _knows(self, kid: str) -> bool:
        return any(jwk.get("kid") == kid for jwk in self._published)

    def _fresh(self, within: float) -> bool:
        loaded = self._loaded_at
        return loaded is not None and self._ctx.clock.now() - loaded < within

    async def reload(self, *, within: float = RELOAD_EVERY, force: bool = False) -> None:
        """Read the keys again unless they were read less than ``within`` seconds ago
        (``force``: whatever the age, after a change made here). Callers that queued on
        the lock behind a reload find it fresh and read nothing: a burst of unknown
        ``kid`` values costs one query, not one each."""
        if not force and self._fresh(within):
            return
        async with self._lock:
            if not force and self._fresh(within):
                return
            now = self._ctx.clock.now()
            async with self._ctx.sessions() as session:
                rows = list((await session.execute(select(OAuthSigningKey))).scalars())
            self._apply(rows, now)

    def _apply(self, rows: list[OAuthSigningKey], now: float) -> None:
        at = utc_from_ts(now)
        # The longest lifetime the setting allows, not today's: lowering it must not
        # unpublish a key whose tokens, issued under the old setting, are still alive.
        kept = timedelta(seconds=PROPAGATION + MAX_TOKEN_SECONDS)
        live = [row for row in rows if row.retired_at is None or row.retired_at + kept > at]
        live.sort(key=lambda row: row.created_at, reverse=True)
        # The newest key every instance has had time to learn; the very first key at once.
        ripe = [row for row in live if row.created_at + timedelta(seconds=PROPAGATION) <= at]
        current = ripe[0] if ripe else (live[-1] if live else None)
        if current is None:
            self._signing = None
        elif self._signing is None or self._signing.kid != current.kid:
            pem = self._ctx.envelope.open(current.private_sealed, context=_context(current.kid))
            key = ECKey.import_key(pem, parameters=_params(current.kid))
            self._signing = SigningKey(current.kid, key)
        self._published = [dict(row.public_jwk) for row in live]
        self._verifying = KeySet([ECKey.import_key(jwk) for jwk in self._published])
        self._loaded_at = now

    async def _create_first(self) -> None:
        async with self._ctx.transaction() as session:
            exists = (
                await session.execute(
                    select(OAuthSigningKey.kid).where(OAuthSigningKey.retired_at.is_(None))
                )
            ).first()
            if exists is None:
                session.add(_new_row(self._ctx))
        # Two instances making the first key at once: both rows are valid signing keys
        # (the newest signs, the other is published), so neither start fails.

    async def rotate(self, *, actor: str) -> str:
        """A new signing key, published now and signing ``PROPAGATION`` seconds from now;
        the current one is retired (it signs until then, and stays published until its
        last tokens have expired). Returns the new ``kid``."""
        at = utc_from_ts(self._ctx.clock.now())
        row = _new_row(self._ctx)
        async with self._ctx.transaction() as session:
            current = await session.execute(
                select(OAuthSigningKey).where(OAuthSigningKey.retired_at.is_(None))
            )
            retired = []
            for old in current.scalars():
                old.retired_at = at
                retired.append(old.kid)
            session.add(row)
            await audit.record(
                session,
                at=at,
                actor=actor,
                action="oauth.signing_key.rotated",
                target=row.kid,
                data={"retired": sorted(retired)},
            )
        await self.reload(force=True)
        return row.kid
