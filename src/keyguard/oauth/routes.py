"""The OAuth apps API (CONTRACT §8): a root key, or a project's owner or admin."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Response, status
from pydantic import BaseModel

from keyguard.api.deps import ContextDep, RootOnly, manager_with
from keyguard.clock import utc_from_ts
from keyguard.engine.permissions import Permission
from keyguard.engine.principals import Principal
from keyguard.oauth import apps
from keyguard.oauth.schemas import (
    OAuthAppCreate,
    OAuthAppCreated,
    OAuthAppOut,
    OAuthAppUpdate,
    SecretRotate,
)
from keyguard.oauth.signing import PROPAGATION

router = APIRouter(prefix="/v1/projects/{project_id}/oauth-apps", tags=["oauth"])
keys_router = APIRouter(prefix="/v1/oauth", tags=["oauth"])
AppManager = Annotated[Principal, Depends(manager_with(Permission.MANAGE_APPS))]
NO_STORE = {"Cache-Control": "no-store"}


def _created(created: apps.CreatedApp) -> OAuthAppCreated:
    out = OAuthAppOut.of(created.app).model_dump()
    return OAuthAppCreated(**out, client_secret=created.client_secret)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=OAuthAppCreated)
async def create_app(
    project_id: str, body: OAuthAppCreate, rt: ContextDep, caller: AppManager, response: Response
) -> OAuthAppCreated:
    """Register an app; a confidential app's ``client_secret`` is in this answer only."""
    created = await apps.create_app(rt, project_id, body.spec(), actor=caller.actor)
    response.headers.update(NO_STORE)
    return _created(created)


@router.get("", response_model=list[OAuthAppOut])
async def list_apps(project_id: str, rt: ContextDep, _: AppManager) -> list[OAuthAppOut]:
    return [OAuthAppOut.of(view) for view in await apps.list_apps(rt, project_id)]


@router.get("/{app_id}", response_model=OAuthAppOut)
async def get_app(project_id: str, app_id: str, rt: ContextDep, _: AppManager) -> OAuthAppOut:
    return OAuthAppOut.of(await apps.get_app(rt, project_id, app_id))


@router.patch("/{app_id}", response_model=OAuthAppOut)
async def update_app(
    project_id: str, app_id: str, body: OAuthAppUpdate, rt: ContextDep, caller: AppManager
) -> OAuthAppOut:
    view = await apps.update_app(rt, project_id, app_id, body.changes(), actor=caller.actor)
    return OAuthAppOut.of(view)


@router.post("/{app_id}/secret", response_model=OAuthAppCreated)
async def rotate_secret(
    project_id: str,
    app_id: str,
    rt: ContextDep,
    caller: AppManager,
    response: Response,
    body: Annotated[SecretRotate | None, Body()] = None,
) -> OAuthAppCreated:
    """A new client secret, shown once; the old one works ``grace_seconds`` more."""
    grace = body.grace_seconds if body is not None else 0
    created = await apps.rotate_secret(
        rt, project_id, app_id, actor=caller.actor, grace_seconds=grace
    )
    response.headers.update(NO_STORE)
    return _created(created)


@router.delete("/{app_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_app(project_id: str, app_id: str, rt: ContextDep, caller: AppManager) -> None:
    """Delete the app and revoke every token it holds."""
    await apps.delete_app(rt, project_id, app_id, actor=caller.actor)


class SigningKeyRotated(BaseModel):
    kid: str
    signs_from: datetime


@keys_router.post("/signing-keys/rotate", response_model=SigningKeyRotated)
async def rotate_signing_key(rt: ContextDep, caller: RootOnly) -> SigningKeyRotated:
    """A new key for access tokens: in the JWKS at once, signing ``signs_from`` on (when
    every instance knows it); the old key stays published until its tokens expire."""
    kid = await rt.oauth.keys.rotate(actor=caller.actor)
    return SigningKeyRotated(kid=kid, signs_from=utc_from_ts(rt.clock.now() + PROPAGATION))
