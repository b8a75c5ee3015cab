"""Settings > API Keys (seed 000's steps): the keys of a project, one key's settings,
and what can be done to it. Every change goes through the key and restriction services
the management API uses, validated by the API's own schemas; a viewer sees every page
but every change is refused on the server (403 page), not only hidden."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import Response

from keyguard.api.deps import context_of
from keyguard.dashboard.access import InProject, in_project
from keyguard.dashboard.key_forms import (
    PERIODS,
    FieldError,
    field_errors,
    form_values,
    settings_body,
    typed_values,
)
from keyguard.dashboard.key_forms import changed as changed_fields
from keyguard.dashboard.refusals import refusal
from keyguard.engine.permissions import Permission
from keyguard.errors import KeyguardError, NotFound, ValidationFailed
from keyguard.keys import service as keys
from keyguard.keys.schemas import KeyCreate, KeyRotate, KeyUpdate
from keyguard.keys.views import CreatedKey, KeyView
from keyguard.restrictions import service as restrictions
from keyguard.usage import service as usage
from keyguard.web.pages import PageError, read_form, redirect, render, spend_once

router = APIRouter(include_in_schema=False)

STATUSES = ("active", "expired", "revoked", "quarantined")
GRACE_CHOICES = (0, 3600, 86_400, 7 * 86_400, 30 * 86_400)  # seconds, for rotation
PAGE = 50  # keys per page of the list


def _keys_url(project_id: str) -> str:
    return f"/projects/{project_id}/settings/api-keys"


def _key_url(project_id: str, key_id: str) -> str:
    return f"{_keys_url(project_id)}/{key_id}"


@router.get("/projects/{project_id}")
async def project_home(request: Request, project_id: str) -> Response:
    await in_project(request, project_id)
    return redirect(_keys_url(project_id))


async def _keys_page(
    request: Request,
    where: InProject,
    *,
    errors: dict[str, Any] | None = None,
    error: str | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    query = request.query_params.get("q", "")[:200]
    wanted = request.query_params.get("status", "")
    wanted = wanted if wanted in STATUSES else ""
    environment = request.query_params.get("environment", "")
    environment = environment if environment in ("live", "test") else ""
    cursor = request.query_params.get("after") or None
    ctx = context_of(request)
    try:
        shown, next_cursor = await keys.list_keys(
            ctx,
            where.project_id,
            limit=PAGE,
            cursor=cursor,
            wanted=keys.KeyFilter(query.strip(), wanted, environment),
        )
    except ValidationFailed:  # a cursor that is not one of ours
        raise PageError(400, "error.form_invalid") from None
    any_key, _ = await keys.list_keys(ctx, where.project_id, limit=1)
    used = await usage.last_uses(ctx, where.project_id)
    return await render(
        request,
        "dashboard/keys.html",
        status=status,
        where=where,
        project_id=where.project_id,
        keys=shown,
        last_used=used,
        total=len(any_key),
        next_cursor=next_cursor,
        query=query,
        wanted_status=wanted,
        environment=environment,
        statuses=STATUSES,
        can_write=where.may(Permission.WRITE_KEYS),
        values=values or form_values(None),
        errors=errors or {},
        error=error,
        periods=PERIODS,
    )


@router.get("/projects/{project_id}/settings/api-keys")
async def keys_page(request: Request, project_id: str) -> Response:
    return await _keys_page(request, await in_project(request, project_id))


@router.post("/projects/{project_id}/settings/api-keys")
async def create_key(request: Request, project_id: str) -> Response:
    where = await in_project(request, project_id, Permission.WRITE_KEYS)
    form = await read_form(request, max_part_size=256 * 1024)
    await spend_once(request, form)
    try:
        body = KeyCreate.model_validate(settings_body(form, creating=True))
        created = await keys.create_key(
            context_of(request), project_id, body.spec(), actor=where.actor
        )
    except ValidationError as exc:
        return await _keys_page(
            request, where, errors=field_errors(exc), values=typed_values(form), status=422
        )
    except KeyguardError as exc:
        error, errors = _settings_refusal(exc)
        return await _keys_page(
            request, where, error=error, errors=errors, values=typed_values(form), status=exc.status
        )
    return await _shown_once(request, where, created, "keys.created.title")


def _settings_refusal(exc: KeyguardError) -> tuple[str | None, dict[str, FieldError]]:
    """The service's refusal of a key's settings: an expiry in the past next to its
    field, anything else at the top."""
    if exc.extra.get("field") == "expires_at":
        return None, {
            "expires_at": FieldError(exc.detail or "", None, "validation.expires_at_past")
        }
    return refusal(exc), {}


async def _shown_once(
    request: Request, where: InProject, created: CreatedKey, title_key: str
) -> Response:
    # Rendered in the response to the POST (never a redirect): the secret is in no URL,
    # no history entry and no cache (the page is no-store), and never shown again.
    return await render(
        request,
        "dashboard/key_created.html",
        status=201,
        where=where,
        project_id=where.project_id,
        key=created.key,
        secret=created.issued.key,
        title_key=title_key,
    )


async def _key(request: Request, where: InProject, key_id: str) -> KeyView:
    """The key, if it is one of this project's (another project's is the 404 page)."""
    try:
        view = await keys.get_key(context_of(request), key_id)
    except NotFound:
        raise PageError(404, "error.not_found") from None
    if view.project_id != where.project_id:
        raise PageError(404, "error.not_found")
    return view


async def _key_page(
    request: Request,
    where: InProject,
    view: KeyView,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, Any] | None = None,
    error: str | None = None,
    status: int = 200,
    **extra: Any,
) -> Response:
    return await render(
        request,
        "dashboard/key.html",
        status=status,
        where=where,
        project_id=where.project_id,
        key=view,
        can_write=where.may(Permission.WRITE_KEYS) and view.status != "revoked",
        values=values or form_values(view),
        errors=errors or {},
        error=error,
        periods=PERIODS,
        totp_header=f"X-{context_of(request).settings.header_prefix}-TOTP",
        **extra,
    )


async def _refused(
    request: Request, where: InProject, view: KeyView, exc: KeyguardError
) -> Response:
    """The key's page with a service's refusal at the top."""
    return await _key_page(request, where, view, error=refusal(exc), status=exc.status)


@router.get("/projects/{project_id}/settings/api-keys/{key_id}")
async def key_page(request: Request, project_id: str, key_id: str) -> Response:
    where = await in_project(request, project_id)
    return await _key_page(request, where, await _key(request, where, key_id))


@router.post("/projects/{project_id}/settings/api-keys/{key_id}")
async def save_key(request: Request, project_id: str, key_id: str) -> Response:
    """Save: every changed setting in one update (one transaction, one audit event)."""
    where = await in_project(request, project_id, Permission.WRITE_KEYS)
    view = await _key(request, where, key_id)
    # Up to 10,000 allowlist entries fit in one field.
    form = await read_form(request, max_part_size=512 * 1024)
    body = settings_body(form, creating=False)
    try:
        validated = KeyUpdate.model_validate(body)
        wanted = changed_fields(body, view, validated.changes())
        update = KeyUpdate.model_validate(wanted)
        await keys.update_key(context_of(request), key_id, update.changes(), actor=where.actor)
    except ValidationError as exc:
        return await _key_page(
            request, where, view, values=typed_values(form), errors=field_errors(exc), status=422
        )
    except KeyguardError as exc:
        error, errors = _settings_refusal(exc)
        return await _key_page(
            request,
            where,
            view,
            values=typed_values(form),
            error=error,
            errors=errors,
            status=exc.status,
        )
    flash = "key_saved" if wanted else "key_unchanged"
    return redirect(f"{_key_url(project_id, key_id)}?flash={flash}")


# ---- TOTP on a key ------------------------------------------------------------------


@router.post("/projects/{project_id}/settings/api-keys/{key_id}/totp/start")
async def start_totp(request: Request, project_id: str, key_id: str) -> Response:
    where = await in_project(request, project_id, Permission.WRITE_KEYS)
    view = await _key(request, where, key_id)
    await spend_once(request, await read_form(request))
    try:
        enrolment = await restrictions.start_totp(context_of(request), key_id, actor=where.actor)
    except KeyguardError as exc:
        return await _key_page(request, where, view, error=refusal(exc), status=exc.status)
    # The secret is shown in this response only (scan it, or type it), never again.
    return await render(
        request,
        "dashboard/key_totp.html",
        where=where,
        project_id=project_id,
        key=view,
        secret=enrolment.secret,
        qr=enrolment.qr_svg,
        errors={},
    )


@router.post("/projects/{project_id}/settings/api-keys/{key_id}/totp/confirm")
async def confirm_totp(request: Request, project_id: str, key_id: str) -> Response:
    where = await in_project(request, project_id, Permission.WRITE_KEYS)
    view = await _key(request, where, key_id)
    form = await read_form(request)
    try:
        await restrictions.confirm_totp(
            context_of(request), key_id, form.get("code").strip(), actor=where.actor
        )
    except KeyguardError as exc:
        # The authenticator already holds the secret: only the code is asked again.
        return await render(
            request,
            "dashboard/key_totp.html",
            status=exc.status,
            where=where,
            project_id=project_id,
            key=view,
            secret=None,
            qr=None,
            errors={"code": refusal(exc)},
        )
    return redirect(f"{_key_url(project_id, key_id)}?flash=totp_enabled")


@router.post("/projects/{project_id}/settings/api-keys/{key_id}/totp/disable")
async def disable_totp(request: Request, project_id: str, key_id: str) -> Response:
    where = await in_project(request, project_id, Permission.WRITE_KEYS)
    view = await _key(request, where, key_id)
    await read_form(request)
    try:
        await restrictions.disable_totp(context_of(request), key_id, actor=where.actor)
    except KeyguardError as exc:
        return await _key_page(request, where, view, error=refusal(exc), status=exc.status)
    return redirect(f"{_key_url(project_id, key_id)}?flash=totp_disabled")


# ---- client certificates (mTLS) and request signing -----------------------------------

CERTIFICATE_BYTES = 64 * 1024  # a PEM certificate is a few kilobytes


@router.post("/projects/{project_id}/settings/api-keys/{key_id}/certificates")
async def add_certificate(request: Request, project_id: str, key_id: str) -> Response:
    """Upload a PEM file or paste it (the file wins when both are given)."""
    where = await in_project(request, project_id, Permission.WRITE_KEYS)
    view = await _key(request, where, key_id)
    form = await read_form(request, max_part_size=CERTIFICATE_BYTES, max_files=1)
    sent_file = form.has_file("certificate_file")
    uploaded = await form.file_text("certificate_file", CERTIFICATE_BYTES)
    pem = (uploaded or "").strip() or form.get("certificate").strip()
    if sent_file and not (uploaded or "").strip():
        pem = ""  # a file was chosen but is empty, too large, or not text (DER)
    if not pem:
        key = "keys.certs.unreadable" if sent_file else "keys.certs.missing"
        return await _key_page(
            request, where, view, errors={"certificate": FieldError(message_key=key)}, status=422
        )
    try:
        await restrictions.add_certificate(context_of(request), key_id, pem, actor=where.actor)
    except KeyguardError as exc:
        return await _key_page(
            request,
            where,
            view,
            values={**form_values(view), "certificate": pem},
            errors={"certificate": FieldError(refusal(exc))},
            status=exc.status,
        )
    return redirect(f"{_key_url(project_id, key_id)}?flash=certificate_added#certs-h")


@router.post("/projects/{project_id}/settings/api-keys/{key_id}/certificates/{fingerprint}/remove")
async def remove_certificate(
    request: Request, project_id: str, key_id: str, fingerprint: str
) -> Response:
    where = await in_project(request, project_id, Permission.WRITE_KEYS)
    view = await _key(request, where, key_id)
    await read_form(request)
    try:
        await restrictions.remove_certificate(
            context_of(request), key_id, fingerprint, actor=where.actor
        )
    except NotFound:
        raise PageError(404, "error.not_found") from None
    except KeyguardError as exc:
        return await _refused(request, where, view, exc)
    return redirect(f"{_key_url(project_id, key_id)}?flash=certificate_removed#certs-h")


@router.post("/projects/{project_id}/settings/api-keys/{key_id}/signing")
async def create_signing_secret(request: Request, project_id: str, key_id: str) -> Response:
    where = await in_project(request, project_id, Permission.WRITE_KEYS)
    view = await _key(request, where, key_id)
    await spend_once(request, await read_form(request))
    try:
        secret = await restrictions.set_signing_secret(
            context_of(request), key_id, actor=where.actor
        )
    except KeyguardError as exc:
        return await _refused(request, where, view, exc)
    # Shown in this response only, like a key.
    return await render(
        request,
        "dashboard/key_signing.html",
        status=201,
        where=where,
        project_id=project_id,
        key=await _key(request, where, key_id),
        secret=secret,
        prefix=context_of(request).settings.header_prefix,
    )


@router.post("/projects/{project_id}/settings/api-keys/{key_id}/signing/remove")
async def remove_signing_secret(request: Request, project_id: str, key_id: str) -> Response:
    where = await in_project(request, project_id, Permission.WRITE_KEYS)
    view = await _key(request, where, key_id)
    await read_form(request)
    try:
        await restrictions.remove_signing_secret(context_of(request), key_id, actor=where.actor)
    except KeyguardError as exc:
        return await _refused(request, where, view, exc)
    return redirect(f"{_key_url(project_id, key_id)}?flash=signing_removed#signing-h")


# ---- revoke, regenerate, rotate: each behind a confirmation page (registered last:
# their one-segment action would otherwise shadow the routes above) ---------------------

ACTIONS = ("revoke", "regenerate", "rotate")


@router.get("/projects/{project_id}/settings/api-keys/{key_id}/{action}")
async def confirm_page(request: Request, project_id: str, key_id: str, action: str) -> Response:
    if action not in ACTIONS:
        raise PageError(404, "error.not_found")
    where = await in_project(request, project_id, Permission.WRITE_KEYS)
    view = await _key(request, where, key_id)
    return await render(
        request,
        "dashboard/key_confirm.html",
        where=where,
        project_id=project_id,
        key=view,
        action=action,
        grace_choices=GRACE_CHOICES,
    )


@router.post("/projects/{project_id}/settings/api-keys/{key_id}/{action}")
async def act(request: Request, project_id: str, key_id: str, action: str) -> Response:
    if action not in ACTIONS:
        raise PageError(404, "error.not_found")
    where = await in_project(request, project_id, Permission.WRITE_KEYS)
    view = await _key(request, where, key_id)
    form = await read_form(request)
    await spend_once(request, form)
    ctx = context_of(request)
    try:
        if action == "revoke":
            await keys.revoke_key(ctx, key_id, actor=where.actor)
            return redirect(f"{_key_url(project_id, key_id)}?flash=key_revoked")
        if action == "regenerate":
            created = await keys.regenerate_key(ctx, key_id, actor=where.actor)
            return await _shown_once(request, where, created, "keys.regenerated.title")
        grace = KeyRotate.model_validate({"grace_seconds": int(form.get("grace") or "0")})
        created = await keys.rotate_key(
            ctx, key_id, grace_seconds=grace.grace_seconds, actor=where.actor
        )
        return await _shown_once(request, where, created, "keys.rotated.title")
    except (ValidationError, ValueError):
        raise PageError(400, "error.form_invalid") from None
    except KeyguardError as exc:
        return await _key_page(request, where, view, error=refusal(exc), status=exc.status)
