"""OAuth apps (CONTRACT §8, §12): a project's registered apps, each app's settings, its
client secret (shown once when it is made, and again only by rotating it) and its
deletion. Every read and change goes through the OAuth apps service the management API
uses, validated by the API's own schemas (``OAuthAppCreate``, ``OAuthAppUpdate``,
``SecretRotate``). Every member sees the apps; registering, changing, rotating and
deleting need ``manage_apps`` (administrators and the owner), refused on the server."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import Response

from keyguard.api.deps import context_of
from keyguard.dashboard.access import InProject, in_project
from keyguard.dashboard.key_forms import FieldError, field_errors, lines
from keyguard.dashboard.refusals import refusal
from keyguard.engine.permissions import Permission
from keyguard.errors import KeyguardError, NotFound
from keyguard.oauth import apps
from keyguard.oauth.apps import AppView, CreatedApp
from keyguard.oauth.schemas import OAuthAppCreate, OAuthAppUpdate, SecretRotate
from keyguard.oauth.server import METADATA_PATH
from keyguard.web.pages import Form, PageError, read_form, redirect, render, spend_once

router = APIRouter(include_in_schema=False)

GRACE_CHOICES = (0, 3600, 86_400, 7 * 86_400)  # seconds the old secret keeps working
# 20 redirect URIs of 2,000 characters, 1,000 domains: the schema's own limits fit.
_FORM_BYTES = 128 * 1024
_FIELDS = ("name", "redirect_uris", "allowed_domains", "scopes")


def _room_url(project_id: str) -> str:
    return f"/projects/{project_id}/oauth-apps"


def _app_url(project_id: str, app_id: str) -> str:
    return f"{_room_url(project_id)}/{app_id}"


def _uris(text: str) -> list[str]:
    """One redirect URI per line (not split at commas: a query string may hold one)."""
    return [entry.strip() for entry in text.splitlines() if entry.strip()]


def _scopes(text: str) -> list[str]:
    """Scopes one per line, or separated by spaces (as OAuth writes them) or commas."""
    return [entry for entry in re.split(r"[\s,]+", text) if entry]


def _body(form: Form, *, creating: bool) -> dict[str, Any]:
    """The JSON body the API would have received for this form."""
    body: dict[str, Any] = {
        "name": form.get("name").strip(),
        "redirect_uris": _uris(form.get("redirect_uris")),
        "allowed_domains": lines(form.get("allowed_domains")),
        "scopes": _scopes(form.get("scopes")),
    }
    if creating:
        body["public"] = form.get("public") == "yes"
    return body


def _typed(form: Form) -> dict[str, Any]:
    """The form as typed (shown again beside its errors)."""
    return {**{name: form.get(name) for name in _FIELDS}, "public": form.get("public") == "yes"}


def _values(view: AppView | None) -> dict[str, Any]:
    """What the form shows for ``view`` (empty for a new app)."""
    if view is None:
        return {"public": False}
    return {
        "name": view.name,
        "redirect_uris": "\n".join(view.redirect_uris),
        "allowed_domains": "\n".join(view.allowed_domains),
        "scopes": "\n".join(view.scopes),
    }


def _discovery(request: Request) -> str:
    return context_of(request).settings.public_base_url + METADATA_PATH


async def _room(
    request: Request,
    where: InProject,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, FieldError] | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    listed = await apps.list_apps(context_of(request), where.project_id)
    return await render(
        request,
        "dashboard/oauth_apps.html",
        status=status,
        where=where,
        project_id=where.project_id,
        apps=listed,
        can_manage=where.may(Permission.MANAGE_APPS),
        values=values or _values(None),
        errors=errors or {},
        error=error,
        discovery=_discovery(request),
    )


@router.get("/projects/{project_id}/oauth-apps")
async def apps_page(request: Request, project_id: str) -> Response:
    return await _room(request, await in_project(request, project_id))


@router.post("/projects/{project_id}/oauth-apps")
async def register(request: Request, project_id: str) -> Response:
    where = await in_project(request, project_id, Permission.MANAGE_APPS)
    form = await read_form(request, max_part_size=_FORM_BYTES)
    await spend_once(request, form)
    try:
        body = OAuthAppCreate.model_validate(_body(form, creating=True))
        created = await apps.create_app(
            context_of(request), project_id, body.spec(), actor=where.actor
        )
    except ValidationError as exc:
        return await _room(
            request, where, values=_typed(form), errors=field_errors(exc), status=422
        )
    except KeyguardError as exc:
        return await _room(
            request, where, values=_typed(form), error=refusal(exc), status=exc.status
        )
    return await _shown_once(request, where, created, "dashboard.oauth_apps.created.title")


async def _shown_once(
    request: Request, where: InProject, made: CreatedApp, title_key: str, *, rotated: bool = False
) -> Response:
    # Rendered in the response to the POST (never a redirect): the secret is in no URL,
    # no history entry and no cache (the page is no-store), and never shown again.
    return await render(
        request,
        "dashboard/oauth_app_created.html",
        status=201,
        where=where,
        project_id=where.project_id,
        app=made.app,
        secret=made.client_secret,
        title_key=title_key,
        rotated=rotated,
        discovery=_discovery(request),
    )


# ---- one app: its settings, its secret, its deletion ---------------------------------


async def _app(request: Request, where: InProject, app_id: str) -> AppView:
    """The app, if it is one of this project's (another project's is the 404 page)."""
    try:
        return await apps.get_app(context_of(request), where.project_id, app_id)
    except NotFound:
        raise PageError(404, "error.not_found") from None


async def _app_page(
    request: Request,
    where: InProject,
    view: AppView,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, FieldError] | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    return await render(
        request,
        "dashboard/oauth_app.html",
        status=status,
        where=where,
        project_id=where.project_id,
        app=view,
        can_manage=where.may(Permission.MANAGE_APPS),
        values=values or _values(view),
        errors=errors or {},
        error=error,
        discovery=_discovery(request),
    )


@router.get("/projects/{project_id}/oauth-apps/{app_id}")
async def app_page(request: Request, project_id: str, app_id: str) -> Response:
    where = await in_project(request, project_id)
    return await _app_page(request, where, await _app(request, where, app_id))


@router.post("/projects/{project_id}/oauth-apps/{app_id}")
async def save(request: Request, project_id: str, app_id: str) -> Response:
    """Save: only what changed, in one update (one transaction, one audit event); an
    untouched form changes and audits nothing."""
    where = await in_project(request, project_id, Permission.MANAGE_APPS)
    view = await _app(request, where, app_id)
    form = await read_form(request, max_part_size=_FORM_BYTES)
    try:
        validated = OAuthAppUpdate.model_validate(_body(form, creating=False))
        changes = {
            field: value
            for field, value in validated.changes().items()
            if value != getattr(view, field)
        }
        if changes:
            await apps.update_app(
                context_of(request), project_id, app_id, changes, actor=where.actor
            )
    except ValidationError as exc:
        return await _app_page(
            request, where, view, values=_typed(form), errors=field_errors(exc), status=422
        )
    except KeyguardError as exc:
        return await _app_page(
            request, where, view, values=_typed(form), error=refusal(exc), status=exc.status
        )
    flash = "oauth_app_saved" if changes else "oauth_app_unchanged"
    return redirect(f"{_app_url(project_id, app_id)}?flash={flash}")


async def _confidential(request: Request, where: InProject, app_id: str) -> AppView:
    """The app, if it has a client secret (a public app has none to rotate)."""
    view = await _app(request, where, app_id)
    if view.public:
        raise PageError(404, "error.not_found")
    return view


@router.get("/projects/{project_id}/oauth-apps/{app_id}/rotate")
async def rotate_page(request: Request, project_id: str, app_id: str) -> Response:
    where = await in_project(request, project_id, Permission.MANAGE_APPS)
    view = await _confidential(request, where, app_id)
    return await render(
        request,
        "dashboard/oauth_app_confirm.html",
        where=where,
        project_id=project_id,
        app=view,
        action="rotate",
        grace_choices=GRACE_CHOICES,
    )


@router.post("/projects/{project_id}/oauth-apps/{app_id}/rotate")
async def rotate(request: Request, project_id: str, app_id: str) -> Response:
    where = await in_project(request, project_id, Permission.MANAGE_APPS)
    await _confidential(request, where, app_id)
    form = await read_form(request)
    await spend_once(request, form)
    try:
        body = SecretRotate.model_validate({"grace_seconds": int(form.get("grace") or "0")})
    except (ValidationError, ValueError):
        raise PageError(400, "error.form_invalid") from None
    try:
        rotated = await apps.rotate_secret(
            context_of(request),
            project_id,
            app_id,
            actor=where.actor,
            grace_seconds=body.grace_seconds,
        )
    except NotFound:
        raise PageError(404, "error.not_found") from None
    return await _shown_once(
        request, where, rotated, "dashboard.oauth_apps.rotated.title", rotated=True
    )


@router.get("/projects/{project_id}/oauth-apps/{app_id}/delete")
async def delete_page(request: Request, project_id: str, app_id: str) -> Response:
    where = await in_project(request, project_id, Permission.MANAGE_APPS)
    view = await _app(request, where, app_id)
    return await render(
        request,
        "dashboard/oauth_app_confirm.html",
        where=where,
        project_id=project_id,
        app=view,
        action="delete",
        grace_choices=(),
    )


@router.post("/projects/{project_id}/oauth-apps/{app_id}/delete")
async def delete(request: Request, project_id: str, app_id: str) -> Response:
    where = await in_project(request, project_id, Permission.MANAGE_APPS)
    await _app(request, where, app_id)
    await read_form(request)
    try:
        await apps.delete_app(context_of(request), project_id, app_id, actor=where.actor)
    except NotFound:
        raise PageError(404, "error.not_found") from None
    return redirect(f"{_room_url(project_id)}?flash=oauth_app_deleted")
