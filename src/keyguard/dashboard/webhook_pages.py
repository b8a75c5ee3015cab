"""Webhooks (CONTRACT §7, §12): a project's endpoints, its webhook signing secret and
the delivery log with every attempt. Every read and change goes through the webhook
and project services the management API uses, validated by the API's own schemas; a
viewer sees every page but every change is refused on the server (403 page)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import Response

from keyguard.api.deps import context_of
from keyguard.dashboard.access import InProject, in_project
from keyguard.dashboard.key_forms import FieldError, field_errors
from keyguard.dashboard.refusals import refusal
from keyguard.engine.permissions import Permission
from keyguard.errors import KeyguardError, NotFound, ValidationFailed
from keyguard.projects import service as projects
from keyguard.web.pages import Form, PageError, read_form, redirect, render, spend_once
from keyguard.webhooks import endpoints
from keyguard.webhooks.errors import (
    WebhookUrlBlocked,
    WebhookUrlHttpsRequired,
    WebhookUrlInvalid,
)
from keyguard.webhooks.events import ALL_EVENTS, EVENT_TYPES
from keyguard.webhooks.schemas import EndpointCreate, EndpointUpdate, SecretRotate
from keyguard.webhooks.views import DeliveryView, EndpointView

router = APIRouter(include_in_schema=False)

EVENTS = (ALL_EVENTS, *sorted(EVENT_TYPES))  # the checkboxes, "*" (every event) first
OVERLAP_CHOICES = (0, 3600, 86_400, 7 * 86_400)  # seconds the old secret keeps signing
_URL_REFUSALS = (WebhookUrlInvalid, WebhookUrlHttpsRequired, WebhookUrlBlocked)
_LOG = 50  # deliveries shown per endpoint, and in the project's log
_FORM_BYTES = 8 * 1024


def _room_url(project_id: str) -> str:
    return f"/projects/{project_id}/webhooks"


def _endpoint_url(project_id: str, endpoint_id: str) -> str:
    return f"{_room_url(project_id)}/{endpoint_id}"


@dataclass(frozen=True, slots=True)
class LogEntry:
    """A delivery of the project's log, with the endpoint it went to."""

    endpoint: EndpointView
    delivery: DeliveryView


def _endpoint_body(form: Form) -> dict[str, Any]:
    """The JSON body the API would have received for this form."""
    return {
        "url": form.get("url").strip(),
        "events": [e for e in form.values.getlist("events") if isinstance(e, str)],
        "description": form.get("description").strip(),
    }


def _typed(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "url": body.get("url", ""),
        "events": body["events"],
        "description": body["description"],
    }


def _values(view: EndpointView | None) -> dict[str, Any]:
    if view is None:
        return {"url": "", "events": [], "description": ""}
    return {"url": view.url, "events": list(view.events), "description": view.description}


def _refusal(exc: KeyguardError) -> tuple[str | None, dict[str, FieldError]]:
    """A service's refusal: next to the URL field when it is about the URL (the SSRF
    guard's), else at the top of the page."""
    message = refusal(exc)
    if isinstance(exc, _URL_REFUSALS):
        return None, {"url": FieldError(message)}
    return message, {}


def _events_refusal(events: list[str]) -> dict[str, FieldError]:
    """The service's own check of the event types, its refusal next to the checkboxes."""
    try:
        endpoints.check_events(events)
    except ValidationFailed as exc:
        return {"events": FieldError(refusal(exc))}
    return {}


async def _log(request: Request, project_id: str, shown: list[EndpointView]) -> list[LogEntry]:
    """The project's latest deliveries, newest first, across its endpoints."""
    by_id = {endpoint.id: endpoint for endpoint in shown}
    found = await endpoints.endpoints_deliveries(
        context_of(request), project_id, list(by_id), limit=_LOG
    )
    return [LogEntry(by_id[d.endpoint_id], d) for d in found if d.endpoint_id in by_id]


async def _room(
    request: Request,
    where: InProject,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, Any] | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    listed = await endpoints.list_endpoints(context_of(request), where.project_id)
    return await render(
        request,
        "dashboard/webhooks.html",
        status=status,
        where=where,
        project_id=where.project_id,
        endpoints=listed,
        log=await _log(request, where.project_id, listed),
        can_write=where.may(Permission.WRITE_WEBHOOKS),
        can_rotate=where.may(Permission.ROTATE_SECRETS),
        events=EVENTS,
        values=values or _values(None),
        errors=errors or {},
        error=error,
    )


@router.get("/projects/{project_id}/webhooks")
async def webhooks_page(request: Request, project_id: str) -> Response:
    return await _room(request, await in_project(request, project_id))


@router.post("/projects/{project_id}/webhooks")
async def add_endpoint(request: Request, project_id: str) -> Response:
    where = await in_project(request, project_id, Permission.WRITE_WEBHOOKS)
    form = await read_form(request, max_part_size=_FORM_BYTES)
    body = _endpoint_body(form)
    try:
        valid = EndpointCreate.model_validate(body)
        if refused := _events_refusal(valid.events):
            return await _room(request, where, values=_typed(body), errors=refused, status=422)
        created = await endpoints.create_endpoint(
            context_of(request),
            project_id,
            url=valid.url,
            events=valid.events,
            description=valid.description,
            actor=where.actor,
        )
    except ValidationError as exc:
        return await _room(
            request, where, values=_typed(body), errors=field_errors(exc), status=422
        )
    except KeyguardError as exc:
        error, errors = _refusal(exc)
        return await _room(
            request, where, values=_typed(body), error=error, errors=errors, status=exc.status
        )
    return redirect(f"{_endpoint_url(project_id, created.id)}?flash=webhook_added")


# ---- the project's webhook signing secret ------------------------------------------


@router.get("/projects/{project_id}/webhook-secret/rotate")
async def rotate_secret_page(request: Request, project_id: str) -> Response:
    where = await in_project(request, project_id, Permission.ROTATE_SECRETS)
    return await render(
        request,
        "dashboard/webhooks_secret.html",
        where=where,
        project_id=project_id,
        overlaps=OVERLAP_CHOICES,
        secret=None,
    )


@router.post("/projects/{project_id}/webhook-secret/rotate")
async def rotate_secret(request: Request, project_id: str) -> Response:
    where = await in_project(request, project_id, Permission.ROTATE_SECRETS)
    form = await read_form(request)
    await spend_once(request, form)
    try:
        body = SecretRotate.model_validate({"overlap_seconds": int(form.get("overlap") or "0")})
    except (ValidationError, ValueError):
        raise PageError(400, "error.form_invalid") from None
    rotated = await projects.rotate_webhook_secret(
        context_of(request), project_id, overlap_seconds=body.overlap_seconds, actor=where.actor
    )
    # Rendered in the response to the POST (never a redirect), in no URL and no cache
    # (the page is no-store), and never shown again.
    return await render(
        request,
        "dashboard/webhooks_secret.html",
        status=201,
        where=where,
        project_id=project_id,
        overlaps=OVERLAP_CHOICES,
        secret=rotated.webhook_secret,
        overlap=body.overlap_seconds,
        previous_until=rotated.previous_valid_until,
        header=f"X-{context_of(request).settings.header_prefix}-Signature",
    )


# ---- one endpoint: its settings, its delivery log -----------------------------------


async def _endpoint(request: Request, where: InProject, endpoint_id: str) -> EndpointView:
    """The endpoint, if it is one of this project's (another project's is the 404 page)."""
    try:
        return await endpoints.get_endpoint(context_of(request), where.project_id, endpoint_id)
    except NotFound:
        raise PageError(404, "error.not_found") from None


async def _endpoint_page(
    request: Request,
    where: InProject,
    view: EndpointView,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, Any] | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    deliveries = await endpoints.list_deliveries(
        context_of(request), where.project_id, view.id, limit=_LOG
    )
    return await render(
        request,
        "dashboard/webhooks_endpoint.html",
        status=status,
        where=where,
        project_id=where.project_id,
        endpoint=view,
        deliveries=deliveries,
        can_write=where.may(Permission.WRITE_WEBHOOKS),
        events=EVENTS,
        values=values or _values(view),
        errors=errors or {},
        error=error,
    )


@router.get("/projects/{project_id}/webhooks/{endpoint_id}")
async def endpoint_page(request: Request, project_id: str, endpoint_id: str) -> Response:
    where = await in_project(request, project_id)
    return await _endpoint_page(request, where, await _endpoint(request, where, endpoint_id))


@router.post("/projects/{project_id}/webhooks/{endpoint_id}")
async def save_endpoint(request: Request, project_id: str, endpoint_id: str) -> Response:
    """Save the events and the description (one update, audited when something changed)."""
    where = await in_project(request, project_id, Permission.WRITE_WEBHOOKS)
    view = await _endpoint(request, where, endpoint_id)
    form = await read_form(request, max_part_size=_FORM_BYTES)
    body = _endpoint_body(form)
    typed = {**_typed(body), "url": view.url}
    try:
        valid = EndpointUpdate.model_validate(
            {"events": body["events"], "description": body["description"]}
        )
        if refused := _events_refusal(valid.events or []):
            return await _endpoint_page(
                request, where, view, values=typed, errors=refused, status=422
            )
        saved = await endpoints.update_endpoint(
            context_of(request),
            project_id,
            endpoint_id,
            events=valid.events,
            description=valid.description,
            actor=where.actor,
        )
    except ValidationError as exc:
        return await _endpoint_page(
            request, where, view, values=typed, errors=field_errors(exc), status=422
        )
    except KeyguardError as exc:
        error, errors = _refusal(exc)
        return await _endpoint_page(
            request, where, view, values=typed, error=error, errors=errors, status=exc.status
        )
    flash = "webhook_unchanged" if saved == view else "webhook_saved"
    return redirect(f"{_endpoint_url(project_id, endpoint_id)}?flash={flash}")


@router.post("/projects/{project_id}/webhooks/{endpoint_id}/disable")
async def disable(request: Request, project_id: str, endpoint_id: str) -> Response:
    where = await in_project(request, project_id, Permission.WRITE_WEBHOOKS)
    await _endpoint(request, where, endpoint_id)
    await read_form(request)
    await endpoints.disable_endpoint(
        context_of(request), project_id, endpoint_id, actor=where.actor
    )
    return redirect(f"{_endpoint_url(project_id, endpoint_id)}?flash=webhook_disabled")


@router.post("/projects/{project_id}/webhooks/{endpoint_id}/enable")
async def enable(request: Request, project_id: str, endpoint_id: str) -> Response:
    where = await in_project(request, project_id, Permission.WRITE_WEBHOOKS)
    await _endpoint(request, where, endpoint_id)
    await read_form(request)
    await endpoints.enable_endpoint(context_of(request), project_id, endpoint_id, actor=where.actor)
    return redirect(f"{_endpoint_url(project_id, endpoint_id)}?flash=webhook_enabled")


@router.post("/projects/{project_id}/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver")
async def redeliver(
    request: Request, project_id: str, endpoint_id: str, delivery_id: str
) -> Response:
    where = await in_project(request, project_id, Permission.WRITE_WEBHOOKS)
    view = await _endpoint(request, where, endpoint_id)
    await read_form(request)
    try:
        await endpoints.redeliver(
            context_of(request), project_id, endpoint_id, delivery_id, actor=where.actor
        )
    except NotFound:
        raise PageError(404, "error.not_found") from None
    except KeyguardError as exc:
        return await _endpoint_page(request, where, view, error=refusal(exc), status=exc.status)
    return redirect(f"{_endpoint_url(project_id, endpoint_id)}?flash=webhook_redelivered#log-h")


@router.get("/projects/{project_id}/webhooks/{endpoint_id}/delete")
async def delete_page(request: Request, project_id: str, endpoint_id: str) -> Response:
    where = await in_project(request, project_id, Permission.WRITE_WEBHOOKS)
    view = await _endpoint(request, where, endpoint_id)
    return await render(
        request, "dashboard/webhooks_delete.html", where=where, project_id=project_id, endpoint=view
    )


@router.post("/projects/{project_id}/webhooks/{endpoint_id}/delete")
async def delete(request: Request, project_id: str, endpoint_id: str) -> Response:
    where = await in_project(request, project_id, Permission.WRITE_WEBHOOKS)
    await _endpoint(request, where, endpoint_id)
    await read_form(request)
    try:
        await endpoints.delete_endpoint(
            context_of(request), project_id, endpoint_id, actor=where.actor
        )
    except NotFound:
        raise PageError(404, "error.not_found") from None
    return redirect(f"{_room_url(project_id)}?flash=webhook_deleted")
