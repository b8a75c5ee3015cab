"""Door 2: the verify API for services in any language (CONTRACT §5)."""

from __future__ import annotations

import base64
import binascii

from fastapi import APIRouter

from keyguard.api.deps import RootKey, RuntimeDep
from keyguard.api.schemas import RateLimitState, VerifyRequest, VerifyResult
from keyguard.crypto.keys import looks_like_key_id, parse_key
from keyguard.engine.facts import Credentials, RequestFacts
from keyguard.errors import KeyguardError, ValidationFailed

router = APIRouter(tags=["verify"])


def _credentials(key: str) -> Credentials:
    key = key.strip()
    if looks_like_key_id(key):
        return Credentials(key, None)
    parsed = parse_key(key)
    return Credentials(parsed.id, parsed.secret)


@router.post("/v1/keys/verify", response_model=VerifyResult)
async def verify_key(body: VerifyRequest, rt: RuntimeDep, _: RootKey) -> VerifyResult:
    raw_body = None
    if body.body_base64 is not None:
        try:
            raw_body = base64.b64decode(body.body_base64, validate=True)
        except (binascii.Error, ValueError):
            raise ValidationFailed("body_base64 is not valid base64") from None
    facts = RequestFacts(
        client_ip=body.ip,
        origin=body.origin,
        referer=body.referer,
        totp=body.totp,
        method=body.method.upper(),
        path_with_query=body.path,
        body=raw_body,
        timestamp=body.timestamp,
        signature=body.signature,
        https=body.https,
    )
    try:
        principal = await rt.engine.verify(
            _credentials(body.key), facts, required_scopes=body.required_scopes
        )
    except KeyguardError as error:
        return VerifyResult(valid=False, code=error.code)
    rl = principal.ratelimit
    return VerifyResult(
        valid=True,
        code=None,
        key_id=principal.key_id,
        project_id=principal.project_id,
        scopes=sorted(principal.scopes),
        environment=principal.environment,
        ratelimit=RateLimitState(limit=rl.limit, remaining=rl.remaining, reset=rl.reset)
        if rl
        else None,
    )
