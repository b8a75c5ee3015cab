"""Door 2: the verify API for services in any language (CONTRACT §5)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time

from fastapi import APIRouter

from keyguard.api.deps import ContextDep, RootOnly
from keyguard.doors.verify_schemas import RateLimitState, VerifyRequest, VerifyResult
from keyguard.engine.credentials import from_key_or_id, looks_like_jwt
from keyguard.engine.facts import AccessToken, RequestFacts
from keyguard.engine.principals import KeyPrincipal, Presented, TokenPrincipal, identify
from keyguard.errors import (
    CredentialsMissing,
    InvalidKey,
    KeyguardError,
    RateLimited,
    StateUnavailable,
    ValidationFailed,
)
from keyguard.wire import prefixed

router = APIRouter(tags=["verify"])


def _lower(headers: dict[str, str] | None) -> dict[str, str]:
    return {name.lower(): value for name, value in (headers or {}).items()}


def _presented(body: VerifyRequest, headers: dict[str, str]) -> Presented:
    """The key from ``key``, the token from ``token``, else whatever the forwarded
    headers present (§4, §8, §9)."""
    if body.key is not None:
        return from_key_or_id(body.key)
    if body.token is not None:
        if not looks_like_jwt(body.token):
            raise InvalidKey()  # what a Bearer value that is neither a key nor a JWT gets
        return AccessToken(body.token)
    presented = identify(headers)
    if presented is None:
        raise CredentialsMissing()
    return presented


def _raw_body(body: VerifyRequest) -> bytes | None:
    if body.body_base64 is None:
        if body.body_sha256 is not None and body.signature is not None:
            # HMAC(secret, METHOD + PATH + BODY + TS) cannot be recomputed from a digest.
            raise ValidationFailed("a signed request needs body_base64 (the raw body)")
        return None
    try:
        raw = base64.b64decode(body.body_base64, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationFailed("body_base64 is not valid base64") from None
    if body.body_sha256 is not None and not hmac.compare_digest(
        hashlib.sha256(raw).hexdigest(), body.body_sha256.lower()
    ):
        raise ValidationFailed("body_sha256 does not match body_base64")
    return raw


@router.post("/v1/keys/verify", response_model=VerifyResult)
async def verify_key(body: VerifyRequest, rt: ContextDep, _: RootOnly) -> VerifyResult:
    """Run every check of the key on a request another service received.

    The caller reports the request as it saw it: ``ip`` is the client address it
    resolved (behind its own proxies), ``https`` whether the client used TLS, and
    ``client_cert_pem`` the client certificate of its TLS handshake. Refusals are a 200
    with ``valid: false`` and the refusal's ``code``; for ``rate_limited``, ``ratelimit``
    has ``remaining: 0`` and ``reset`` = seconds to wait (the ``Retry-After`` to send).
    """
    if sum(x is not None for x in (body.key, body.token, body.headers)) != 1:
        raise ValidationFailed("send exactly one of `key`, `token` and `headers`")
    raw_body = _raw_body(body)
    headers = _lower(body.headers)
    names = prefixed(rt.settings.header_prefix)
    facts = RequestFacts(
        client_ip=body.ip,
        origin=body.origin if body.origin is not None else headers.get("origin"),
        referer=body.referer if body.referer is not None else headers.get("referer"),
        totp=body.totp if body.totp is not None else headers.get(names.totp),
        method=body.method.upper(),
        path_with_query=body.path,
        body=raw_body,
        timestamp=body.timestamp or headers.get(names.timestamp),
        signature=body.signature or headers.get(names.signature),
        client_cert_pem=body.client_cert_pem,
        https=body.https,
    )
    started = time.perf_counter()
    try:
        principal = await rt.engine.authenticate(
            _presented(body, headers), facts, required_scopes=body.required_scopes
        )
    except KeyguardError as error:
        rt.engine.metrics.observe("verify", error.code, time.perf_counter() - started)
        if isinstance(error, StateUnavailable):
            raise  # not the key's answer: 503, so the caller cannot take it for one
        if isinstance(error, RateLimited):
            state = RateLimitState(limit=error.limit, remaining=0, reset=error.retry_after)
            return VerifyResult(valid=False, code=error.code, ratelimit=state)
        return VerifyResult(valid=False, code=error.code)
    rt.engine.metrics.observe("verify", None, time.perf_counter() - started)
    rl = principal.ratelimit
    return VerifyResult(
        valid=True,
        code=None,
        key_id=principal.key_id if isinstance(principal, KeyPrincipal) else None,
        project_id=principal.project_id,
        scopes=sorted(principal.scopes),
        environment=principal.environment if isinstance(principal, KeyPrincipal) else None,
        token_id=principal.token_id if isinstance(principal, TokenPrincipal) else None,
        client_id=principal.client_id if isinstance(principal, TokenPrincipal) else None,
        subject=principal.subject if isinstance(principal, TokenPrincipal) else None,
        ratelimit=RateLimitState(limit=rl.limit, remaining=rl.remaining, reset=rl.reset)
        if rl
        else None,
    )
