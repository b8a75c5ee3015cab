"""API key management (CONTRACT §3): a root key, or a person whose role allows it."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response, status

from keyguard.api.deps import ContextDep, Manager, ProjectOwner, resource_kind
from keyguard.keys import service as keys
from keyguard.keys.schemas import (
    CertificateOut,
    KeyCreate,
    KeyCreated,
    KeyOut,
    KeyPage,
    KeyRotate,
    KeyUpdate,
)
from keyguard.keys.views import CertificateView, CreatedKey, KeyView

router = APIRouter(tags=["keys"])
resource_kind("key_id", keys.project_of_key)


def key_out(view: KeyView) -> KeyOut:
    return KeyOut.model_validate(view, from_attributes=True)


def certificate_out(view: CertificateView) -> CertificateOut:
    return CertificateOut.model_validate(view, from_attributes=True)


def created_out(created: CreatedKey) -> KeyCreated:
    return KeyCreated(
        **key_out(created.key).model_dump(), key=created.issued.key, secret=created.issued.secret
    )


@router.post(
    "/v1/projects/{project_id}/keys",
    status_code=status.HTTP_201_CREATED,
    response_model=KeyCreated,
)
async def create_key(
    project_id: str, body: KeyCreate, rt: ContextDep, caller: Manager
) -> KeyCreated:
    created = await keys.create_key(rt, project_id, body.spec(), actor=caller.actor)
    return created_out(created)


@router.get("/v1/projects/{project_id}/keys", response_model=KeyPage)
async def list_keys(
    project_id: str,
    rt: ContextDep,
    _: Manager,
    limit: int = Query(default=50, ge=1, le=keys.MAX_PAGE),
    cursor: str | None = Query(default=None, max_length=512),
    rotation_due: bool = Query(default=False, description="Only keys past their rotate_by"),
) -> KeyPage:
    page, next_cursor = await keys.list_keys(
        rt, project_id, limit=limit, cursor=cursor, rotation_due=rotation_due
    )
    return KeyPage(data=[key_out(view) for view in page], next_cursor=next_cursor)


@router.get("/v1/keys/{key_id}", response_model=KeyOut)
async def get_key(key_id: str, rt: ContextDep, _: Manager) -> KeyOut:
    return key_out(await keys.get_key(rt, key_id))


@router.patch("/v1/keys/{key_id}", response_model=KeyOut)
async def update_key(key_id: str, body: KeyUpdate, rt: ContextDep, caller: Manager) -> KeyOut:
    return key_out(await keys.update_key(rt, key_id, body.changes(), actor=caller.actor))


@router.delete("/v1/keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_key(key_id: str, rt: ContextDep, caller: Manager) -> Response:
    await keys.revoke_key(rt, key_id, actor=caller.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/v1/keys/{key_id}/release", response_model=KeyOut)
async def release_key(key_id: str, rt: ContextDep, caller: ProjectOwner) -> KeyOut:
    """Lift a leak quarantine (a false report): the same secret works again. The project's
    owners decide that (or a root key), not whoever may write keys: the developer who
    leaked it, say, would otherwise revive the exposed secret."""
    return key_out(await keys.release_key(rt, key_id, actor=caller.actor))


@router.post("/v1/keys/{key_id}/regenerate", response_model=KeyCreated)
async def regenerate_key(key_id: str, rt: ContextDep, caller: Manager) -> KeyCreated:
    return created_out(await keys.regenerate_key(rt, key_id, actor=caller.actor))


@router.post(
    "/v1/keys/{key_id}/rotate", status_code=status.HTTP_201_CREATED, response_model=KeyCreated
)
async def rotate_key(
    key_id: str, rt: ContextDep, caller: Manager, body: KeyRotate | None = None
) -> KeyCreated:
    grace = (body or KeyRotate()).grace_seconds
    rotated = await keys.rotate_key(rt, key_id, grace_seconds=grace, actor=caller.actor)
    return created_out(rotated)
