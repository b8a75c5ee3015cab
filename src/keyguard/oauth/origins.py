"""Which origins the OAuth endpoints answer before they know the app (discovery, the
JWKS, CORS preflights): an origin that some live app allows, by the same wildcard rule
as keys (an app without a list allows every origin). Read from the database at most
every ``TTL`` seconds per instance."""

from __future__ import annotations

from sqlalchemy import select

from keyguard.context import ServiceContext
from keyguard.engine.origins import DomainAllowlist
from keyguard.oauth.models import OAuthApp

TTL = 30.0


class AppOrigins:
    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx
        self._lists: tuple[DomainAllowlist, ...] = ()
        self._any_open = False
        self._loaded_at: float | None = None

    async def allowed_by_any(self, origin: str) -> bool:
        now = self._ctx.clock.now()
        if self._loaded_at is None or now - self._loaded_at >= TTL:
            await self._load(now)
        if self._any_open:
            return True
        return any(domains.allows_origin(origin, None) for domains in self._lists)

    async def _load(self, now: float) -> None:
        async with self._ctx.sessions() as db:
            rows = await db.execute(
                select(OAuthApp.allowed_domains).where(OAuthApp.deleted_at.is_(None))
            )
            lists = [DomainAllowlist(domains) for (domains,) in rows.all()]
        self._any_open = any(not domains for domains in lists)
        self._lists = tuple(domains for domains in lists if domains)
        self._loaded_at = now
