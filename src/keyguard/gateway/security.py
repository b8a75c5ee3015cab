"""One operation's security requirements, enforced on one request (``--openapi``).

The alternatives are tried in the document's order, and the first one whose credentials
the request all presents is the one checked: its refusal is the answer. So the choice
depends on what the request carries, never on which check would pass, and a request
cannot shop among alternatives for the weakest one. An empty alternative (``{}``) is
always presented: put it last to make credentials optional but checked when sent. With
no alternative presented: 401 ``credentials_missing``.

An alternative needing a key and an access token checks the token first (it consumes no
rate limit, TOTP step or signature of the key), then the key, then that both belong to
the same project: the token's OAuth app must be the key's project's
(``token_project_mismatch``, 403).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from keyguard.doors.authenticate import BodyReader, verify_key
from keyguard.engine.credentials import KeyAndToken, extract_key_and_token
from keyguard.engine.facts import RequestFacts
from keyguard.engine.principals import KeyPrincipal, Principal, TokenPrincipal
from keyguard.engine.records import RateLimitStatus
from keyguard.engine.verifier import PolicyEngine
from keyguard.errors import CredentialsMissing, InvalidKey, KeyguardError
from keyguard.gateway.errors import TokenProjectMismatch
from keyguard.gateway.routes import Alternative

__all__ = ["NOBODY", "Caller", "enforce"]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who passed: a key, an access token, both, or nobody (an open operation)."""

    key: KeyPrincipal | None = None
    token: TokenPrincipal | None = None

    @property
    def ratelimit(self) -> RateLimitStatus | None:
        if self.key is not None and self.key.ratelimit is not None:
            return self.key.ratelimit
        return None if self.token is None else self.token.ratelimit

    @classmethod
    def of(cls, principal: Principal) -> Caller:
        """The caller of a gateway without a document (one credential, as ever)."""
        if isinstance(principal, KeyPrincipal):
            return cls(key=principal)
        if isinstance(principal, TokenPrincipal):
            return cls(token=principal)
        raise CredentialsMissing()  # a person's session is no credential of the gateway


NOBODY = Caller()


async def enforce(
    engine: PolicyEngine,
    security: Iterable[Alternative],
    headers: Mapping[str, str],
    facts: Callable[[], RequestFacts],
    read_body: BodyReader,
) -> Caller:
    """The caller, if the request meets one of ``security``'s alternatives; else the
    refusal. Checks are counted under the ``gateway`` door (GET /metrics)."""
    started = time.perf_counter()
    try:
        caller = await _enforce(engine, security, headers, facts, read_body)
    except KeyguardError as refusal:
        engine.metrics.observe("gateway", refusal.code, time.perf_counter() - started)
        raise
    if caller is not NOBODY:
        engine.metrics.observe("gateway", None, time.perf_counter() - started)
    return caller


async def _enforce(
    engine: PolicyEngine,
    security: Iterable[Alternative],
    headers: Mapping[str, str],
    facts: Callable[[], RequestFacts],
    read_body: BodyReader,
) -> Caller:
    presented: KeyAndToken | None = None  # read once, and only if an alternative asks
    for alternative in security:
        if alternative.anonymous:
            return NOBODY
        if presented is None:
            presented = extract_key_and_token(headers)
        if (presented.key is not None or not alternative.key) and (
            presented.token is not None or not alternative.token
        ):
            return await _check(engine, alternative, presented, facts(), read_body)
    raise CredentialsMissing()


async def _check(
    engine: PolicyEngine,
    alternative: Alternative,
    presented: KeyAndToken,
    facts: RequestFacts,
    read_body: BodyReader,
) -> Caller:
    token = key = None
    if alternative.token and presented.token is not None:
        principal = await engine.authenticate(
            presented.token, facts, required_scopes=alternative.token_scopes
        )
        if not isinstance(principal, TokenPrincipal):  # the verifier's contract; never else
            raise InvalidKey()
        token = principal
    if alternative.key and presented.key is not None:
        key = await verify_key(
            engine, presented.key, facts, read_body, required_scopes=alternative.key_scopes
        )
    if key is not None and token is not None and key.project_id != token.project_id:
        raise TokenProjectMismatch()
    return Caller(key, token)
