"""Settings > Root Keys: the installation's management keys, for its administrators.

A root key manages every project, so a project's owner is not enough to see or make
one (that would let the owner of one project reach all the others): only an account
marked administrator (the one ``keyguard init`` made, and those it was given to) sees
this room; anyone else gets the 404 page, as for a place that does not exist.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import Response

from keyguard.accounts.pages import sensitive
from keyguard.accounts.views import SignedIn
from keyguard.api.deps import context_of
from keyguard.dashboard.key_forms import FieldError, field_errors
from keyguard.dashboard.refusals import refusal
from keyguard.errors import KeyguardError, NotFound
from keyguard.keys import root_keys
from keyguard.keys.root_routes import RootKeyCreate
from keyguard.web.pages import PageError, read_form, redirect, render, require_person, spend_once

router = APIRouter(include_in_schema=False)

ROOT_KEYS = "/settings/root-keys"


async def _administrator(request: Request) -> SignedIn:
    """An administrator who signed in recently: a root key outlives the session that
    made it, so a stolen session cookie alone must not be enough to mint one."""
    me = await require_person(request)
    if not me.account.is_admin:
        raise PageError(404, "error.not_found")
    return await sensitive(request)


async def _page(
    request: Request,
    *,
    name: str = "",
    errors: dict[str, FieldError] | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    return await render(
        request,
        "dashboard/root_keys.html",
        status=status,
        keys=await root_keys.list_root_keys(context_of(request)),
        name=name,
        errors=errors or {},
        error=error,
    )


@router.get(ROOT_KEYS)
async def root_keys_page(request: Request) -> Response:
    await _administrator(request)
    return await _page(request)


@router.post(ROOT_KEYS)
async def create_root_key(request: Request) -> Response:
    me = await _administrator(request)
    form = await read_form(request)
    await spend_once(request, form)
    try:
        body = RootKeyCreate.model_validate({"name": form.get("name").strip()})
    except ValidationError as exc:
        return await _page(request, name=form.get("name"), errors=field_errors(exc), status=422)
    created = await root_keys.create_root_key(
        context_of(request), name=body.name, actor=me.principal.actor, account_id=me.account.id
    )
    # Shown in this response only (no-store, in no URL), never again.
    return await render(
        request, "dashboard/root_key_created.html", status=201, key=created.view, secret=created.key
    )


@router.get(ROOT_KEYS + "/{key_id}/revoke")
async def confirm_revoke(request: Request, key_id: str) -> Response:
    await _administrator(request)
    found = [k for k in await root_keys.list_root_keys(context_of(request)) if k.id == key_id]
    if not found:
        raise PageError(404, "error.not_found")
    return await render(request, "dashboard/root_key_revoke.html", key=found[0])


@router.post(ROOT_KEYS + "/{key_id}/revoke")
async def revoke_root_key(request: Request, key_id: str) -> Response:
    me = await _administrator(request)
    await read_form(request)
    try:
        await root_keys.revoke_root_key(context_of(request), key_id, actor=me.principal.actor)
    except NotFound:
        raise PageError(404, "error.not_found") from None
    except KeyguardError as exc:
        return await _page(request, error=refusal(exc), status=exc.status)
    return redirect(f"{ROOT_KEYS}?flash=root_key_revoked")
