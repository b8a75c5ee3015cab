"""The session cookie as a credential of the management API (CONTRACT §9): the policy
engine's :class:`SessionVerifier` for signed-in people.

A browser sends cookies by itself, so a cookie alone never changes anything: the API
door also asks unsafe requests for the CSRF token (``X-CSRF-Token``) bound to the
session, which a page of another site cannot read.
"""

from __future__ import annotations

from keyguard.accounts import sessions
from keyguard.accounts.context import AccountContext
from keyguard.accounts.errors import CsrfInvalid, SessionExpired
from keyguard.engine.facts import RequestFacts
from keyguard.engine.principals import SessionCookie, UserPrincipal
from keyguard.web import csrf

CSRF_HEADER = "x-csrf-token"


class SessionPrincipals:
    def __init__(self, ctx: AccountContext) -> None:
        self._ctx = ctx

    async def verify(self, cookie: SessionCookie, facts: RequestFacts) -> UserPrincipal:
        signed_in = await sessions.resolve(self._ctx, cookie.value)
        if signed_in is None:
            raise SessionExpired()
        return signed_in.principal


def check_csrf(ctx: AccountContext, session_cookie: str | None, token: str | None) -> None:
    """Refuse (403 ``csrf_invalid``) an unsafe request whose CSRF token is not the one
    bound to its session."""
    binding = csrf.session_binding(sessions.token_hash(session_cookie)) if session_cookie else None
    if not csrf.valid(ctx.account_keys.csrf, binding, token):
        raise CsrfInvalid()
