"""The shared step of the ASGI doors: ASGI request -> presented credential -> Principal."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from keyguard.doors.scope import facts_from_scope, header_map
from keyguard.engine.facts import Credentials, RequestFacts
from keyguard.engine.ipallow import TrustedProxies
from keyguard.engine.principals import KeyPrincipal, Principal, identify
from keyguard.engine.verifier import PolicyEngine
from keyguard.errors import CredentialsMissing, KeyguardError

BodyReader = Callable[[], Awaitable[bytes]]

_NO_PROXIES = TrustedProxies()


async def authenticate_scope(
    engine: PolicyEngine,
    scope: Mapping[str, Any],
    read_body: BodyReader,
    *,
    header_prefix: str,
    trusted_proxies: TrustedProxies = _NO_PROXIES,
    client_cert_header: str | None = None,
    required_scopes: Iterable[str] = (),
    root: bool = False,
    headers: dict[str, str] | None = None,
    door: str = "api",
) -> Principal:
    """Authenticate the request in ``scope``; counted under ``door`` (GET /metrics)."""
    started = time.perf_counter()
    try:
        principal = await _authenticate(
            engine,
            scope,
            read_body,
            header_prefix,
            trusted_proxies,
            client_cert_header,
            required_scopes,
            root,
            headers,
        )
    except KeyguardError as refusal:
        engine.metrics.observe(door, refusal.code, time.perf_counter() - started)
        raise
    engine.metrics.observe(door, None, time.perf_counter() - started)
    return principal


async def _authenticate(
    engine: PolicyEngine,
    scope: Mapping[str, Any],
    read_body: BodyReader,
    header_prefix: str,
    trusted_proxies: TrustedProxies,
    client_cert_header: str | None,
    required_scopes: Iterable[str],
    root: bool,
    headers: dict[str, str] | None,
) -> Principal:
    if headers is None:
        headers = header_map(scope)
    presented = identify(headers)
    if presented is None:
        raise CredentialsMissing()
    facts = facts_from_scope(scope, headers, header_prefix, trusted_proxies, client_cert_header)
    if not isinstance(presented, Credentials):
        return await engine.authenticate(
            presented, facts, required_scopes=required_scopes, root=root
        )
    return await verify_key(
        engine, presented, facts, read_body, required_scopes=required_scopes, root=root
    )


async def verify_key(
    engine: PolicyEngine,
    credentials: Credentials,
    facts: RequestFacts,
    read_body: BodyReader,
    *,
    required_scopes: Iterable[str] = (),
    root: bool = False,
) -> KeyPrincipal:
    """``engine.verify``, with the body read first when the request is signed."""
    if credentials.secret is None or facts.signature is not None:
        # A signature covers the body, so it must be read first, but only for a live key
        # that can sign: anyone can send a well-formed bare id, and must not make us buffer
        # a body for it. (The cache look-up is the one verify() does next; a forged id
        # is not looked up at all.)
        record = await engine.lookup(credentials.key_id)
        if record is not None and record.signing_secret is not None and not record.revoked:
            facts.body = await read_body()
    return await engine.verify(credentials, facts, required_scopes=required_scopes, root=root)
