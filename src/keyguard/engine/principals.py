"""Who is calling: three kinds of credential, one dispatch, three kinds of principal.

A request presents one of (CONTRACT §4, §8, §9):

- an API key, in one of the four forms of §4 → :class:`KeyPrincipal` (a root key is one
  kind of it, ``is_root``);
- ``Authorization: Bearer`` holding a JWT (an OAuth access token) → :class:`TokenPrincipal`;
- the session cookie of a signed-in person, and no key → :class:`UserPrincipal`.

:func:`identify` tells which, without I/O. The policy engine verifies keys; access
tokens and sessions are verified by the :class:`TokenVerifier` and
:class:`SessionVerifier` the OAuth and accounts features plug into it. Until they do, a
token or a cookie gets the same 401 problem a malformed or missing key gets, so nothing
is ever half-accepted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from keyguard.engine.credentials import extract_credentials
from keyguard.engine.facts import AccessToken, Credentials, RequestFacts
from keyguard.engine.records import RateLimitStatus
from keyguard.wire import SESSION_COOKIE


@dataclass(frozen=True, slots=True)
class KeyPrincipal:
    """An API key that passed every check of the policy engine."""

    key_id: str
    project_id: str | None
    environment: str
    scopes: frozenset[str]
    is_root: bool
    ratelimit: RateLimitStatus | None = None

    @property
    def actor(self) -> str:
        """Who the audit log says acted."""
        return self.key_id


@dataclass(frozen=True, slots=True)
class TokenPrincipal:
    """An OAuth access token (RFC 9068) of an app in a project, maybe on a person's behalf."""

    token_id: str
    client_id: str
    project_id: str
    scopes: frozenset[str]
    subject: str | None = None  # the account the app acts for; None for client credentials
    ratelimit: RateLimitStatus | None = None

    @property
    def actor(self) -> str:
        return self.subject or f"client:{self.client_id}"


@dataclass(frozen=True, slots=True)
class UserPrincipal:
    """A signed-in person; what they may do comes from their roles in each project."""

    account_id: str
    session_id: str = field(repr=False)
    roles: Mapping[str, str] = field(default_factory=dict)  # project id -> role
    project_id: str | None = None  # people are not bound to one project
    scopes: frozenset[str] = frozenset()  # a person's scopes come from a role, per project
    ratelimit: RateLimitStatus | None = None

    @property
    def actor(self) -> str:
        return self.account_id


Principal = KeyPrincipal | TokenPrincipal | UserPrincipal
PRINCIPAL_TYPES = (KeyPrincipal, TokenPrincipal, UserPrincipal)


@dataclass(frozen=True, slots=True, repr=False)
class SessionCookie:
    """The session cookie, when no key was presented (verified by a :class:`SessionVerifier`)."""

    value: str

    def __repr__(self) -> str:
        return "SessionCookie(<redacted>)"


Presented = Credentials | AccessToken | SessionCookie


class TokenVerifier(Protocol):
    """Filled by the OAuth feature (CONTRACT §8)."""

    async def verify(
        self, token: AccessToken, facts: RequestFacts, *, required_scopes: Iterable[str]
    ) -> TokenPrincipal: ...


class SessionVerifier(Protocol):
    """Filled by the accounts feature (CONTRACT §9)."""

    async def verify(self, cookie: SessionCookie, facts: RequestFacts) -> UserPrincipal: ...


def session_cookie(cookie_header: str | None) -> str | None:
    """The value of our session cookie in a ``Cookie`` header, if present and non-empty.

    The one parser of it, for the principal and for the CSRF binding alike. Two
    different values (a cookie planted beside the real one) are no cookie at all: which
    one a parser keeps is not something to rely on."""
    if not cookie_header:
        return None
    found = {
        value
        for pair in cookie_header.replace(",", ";").split(";")
        for name, sep, value in [pair.strip().partition("=")]
        if sep and name == SESSION_COOKIE and value
    }
    return found.pop() if len(found) == 1 else None


def identify(headers: Mapping[str, str]) -> Presented | None:
    """What the request presents (lower-cased headers), or None; no I/O.

    A key header wins over the cookie: a browser adds the cookie by itself, a header is a
    credential the caller chose to send. Raises ``InvalidKey`` for a malformed key.
    """
    presented = extract_credentials(headers)
    if presented is not None:
        return presented
    cookie = session_cookie(headers.get("cookie"))
    return SessionCookie(cookie) if cookie is not None else None
