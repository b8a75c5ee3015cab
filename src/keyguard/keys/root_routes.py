"""Root keys (CONTRACT §3): made, listed, revoked and rotated with a root key."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, Field

from keyguard.api.deps import ContextDep, RootOnly
from keyguard.api.schema_base import Name, Strict
from keyguard.keys import root_keys
from keyguard.keys.root_keys import CreatedRootKey, RootKeyView
from keyguard.keys.schemas import KeyRotate

router = APIRouter(prefix="/v1/root-keys", tags=["root keys"])


class RootKeyCreate(Strict):
    name: Name


class RootKeyOut(BaseModel):
    id: str
    name: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    rotated_from: str | None
    rotated_to: str | None
    active: bool


class RootKeyCreated(RootKeyOut):
    key: str = Field(description="The full root key, shown only in this response")


def _out(view: RootKeyView) -> RootKeyOut:
    return RootKeyOut.model_validate(view, from_attributes=True)


def _created(created: CreatedRootKey) -> RootKeyCreated:
    return RootKeyCreated(**_out(created.view).model_dump(), key=created.key)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=RootKeyCreated)
async def create(body: RootKeyCreate, rt: ContextDep, caller: RootOnly) -> RootKeyCreated:
    return _created(await root_keys.create_root_key(rt, name=body.name, actor=caller.actor))


@router.get("", response_model=list[RootKeyOut])
async def list_all(rt: ContextDep, _: RootOnly) -> list[RootKeyOut]:
    return [_out(view) for view in await root_keys.list_root_keys(rt)]


@router.delete("/{root_key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke(root_key_id: str, rt: ContextDep, caller: RootOnly) -> Response:
    await root_keys.revoke_root_key(rt, root_key_id, actor=caller.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{root_key_id}/rotate", status_code=status.HTTP_201_CREATED, response_model=RootKeyCreated
)
async def rotate(
    root_key_id: str, rt: ContextDep, caller: RootOnly, body: KeyRotate | None = None
) -> RootKeyCreated:
    grace = (body or KeyRotate()).grace_seconds
    rotated = await root_keys.rotate_root_key(
        rt, root_key_id, grace_seconds=grace, actor=caller.actor
    )
    return _created(rotated)
