"""API key management (CONTRACT §3), root key only."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Response, status

from keyguard.api.deps import RootKey, RuntimeDep
from keyguard.api.schemas import (
    CertificateOut,
    KeyCreate,
    KeyCreated,
    KeyOut,
    KeyPage,
    KeyRotate,
    KeyUpdate,
    RateLimitOut,
)
from keyguard.clock import utc_from_ts
from keyguard.keys import service as keys
from keyguard.runtime import Runtime
from keyguard.storage.models import ApiKey, KeyCertificate

router = APIRouter(tags=["keys"])


def key_out(rt: Runtime, row: ApiKey, certs: list[KeyCertificate] | None = None) -> KeyOut:
    now = utc_from_ts(rt.clock.now())
    if row.revoked_at is not None:
        state = "revoked"
    elif row.expires_at is not None and row.expires_at <= now:
        state = "expired"
    else:
        state = "active"
    rate = None
    if row.rate_limit is not None and row.rate_period_seconds is not None:
        rate = RateLimitOut(limit=row.rate_limit, period_seconds=row.rate_period_seconds)
    return KeyOut(
        id=row.id,
        project_id=row.project_id,
        name=row.name,
        environment=row.environment,
        status=state,
        scopes=list(row.scopes),
        metadata=dict(row.key_metadata),
        created_at=row.created_at,
        updated_at=row.updated_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        rotated_from=row.rotated_from,
        rotated_to=row.rotated_to,
        ip_allowlist=list(row.ip_allowlist),
        allowed_domains=list(row.allowed_domains),
        rate_limit=rate,
        totp_enabled=row.totp_enabled,
        require_signature=row.require_signature,
        certificates=[CertificateOut.of(c) for c in certs or []],
    )


async def _created(rt: Runtime, created: keys.CreatedKey) -> KeyCreated:
    # A rotated key's successor inherits its certificates: show them.
    certs = (await keys.certificates_by_key(rt, [created.row.id]))[created.row.id]
    return KeyCreated(
        **key_out(rt, created.row, certs).model_dump(),
        key=created.issued.key,
        secret=created.issued.secret,
    )


@router.post(
    "/v1/projects/{project_id}/keys",
    status_code=status.HTTP_201_CREATED,
    response_model=KeyCreated,
)
async def create_key(
    project_id: str, body: KeyCreate, rt: RuntimeDep, caller: RootKey
) -> KeyCreated:
    spec = keys.KeySpec(
        name=body.name,
        environment=body.environment,
        scopes=tuple(body.scopes),
        expires_at=body.expires_at,
        metadata=body.metadata,
        ip_allowlist=tuple(body.ip_allowlist),
        allowed_domains=tuple(body.allowed_domains),
        rate_limit=(body.rate_limit.limit, body.rate_limit.period_seconds)
        if body.rate_limit
        else None,
    )
    created = await keys.create_key(rt, project_id, spec, actor=caller.key_id)
    return await _created(rt, created)


@router.get("/v1/projects/{project_id}/keys", response_model=KeyPage)
async def list_keys(
    project_id: str,
    rt: RuntimeDep,
    _: RootKey,
    limit: int = Query(default=50, ge=1, le=keys.MAX_PAGE),
    cursor: str | None = Query(default=None, max_length=512),
) -> KeyPage:
    rows, next_cursor = await keys.list_keys(rt, project_id, limit=limit, cursor=cursor)
    certs = await keys.certificates_by_key(rt, [r.id for r in rows])
    return KeyPage(data=[key_out(rt, r, certs[r.id]) for r in rows], next_cursor=next_cursor)


@router.get("/v1/keys/{key_id}", response_model=KeyOut)
async def get_key(key_id: str, rt: RuntimeDep, _: RootKey) -> KeyOut:
    row, certs = await keys.get_key(rt, key_id)
    return key_out(rt, row, certs)


@router.patch("/v1/keys/{key_id}", response_model=KeyOut)
async def update_key(key_id: str, body: KeyUpdate, rt: RuntimeDep, caller: RootKey) -> KeyOut:
    changes: dict[str, Any] = {}
    for field in body.model_fields_set:
        value = getattr(body, field)
        if field == "rate_limit":
            value = (value.limit, value.period_seconds) if value else None
        changes[field] = value
    await keys.update_key(rt, key_id, changes, actor=caller.key_id)
    row, certs = await keys.get_key(rt, key_id)
    return key_out(rt, row, certs)


@router.delete("/v1/keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_key(key_id: str, rt: RuntimeDep, caller: RootKey) -> Response:
    await keys.revoke_key(rt, key_id, actor=caller.key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/v1/keys/{key_id}/regenerate", response_model=KeyCreated)
async def regenerate_key(key_id: str, rt: RuntimeDep, caller: RootKey) -> KeyCreated:
    return await _created(rt, await keys.regenerate_key(rt, key_id, actor=caller.key_id))


@router.post(
    "/v1/keys/{key_id}/rotate", status_code=status.HTTP_201_CREATED, response_model=KeyCreated
)
async def rotate_key(
    key_id: str, rt: RuntimeDep, caller: RootKey, body: KeyRotate | None = None
) -> KeyCreated:
    grace = (body or KeyRotate()).grace_seconds
    rotated = await keys.rotate_key(rt, key_id, grace_seconds=grace, actor=caller.key_id)
    return await _created(rt, rotated)
