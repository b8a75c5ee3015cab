"""Create a project (any signed-in person may; they become its owner, as through the
management API). Listing and switching are the Projects page of the accounts feature."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import Response

from keyguard.accounts import members
from keyguard.api.deps import context_of
from keyguard.dashboard.key_forms import FieldError, field_errors
from keyguard.dashboard.refusals import refusal
from keyguard.errors import KeyguardError
from keyguard.projects import service as projects
from keyguard.projects.schemas import ProjectCreate
from keyguard.web.pages import read_form, render, require_person, spend_once

router = APIRouter(include_in_schema=False)


@router.post("/projects")
async def create_project(request: Request) -> Response:
    me = await require_person(request)
    form = await read_form(request)
    await spend_once(request, form)
    name, prefix = form.get("name").strip(), form.get("key_prefix").strip()
    try:
        body = ProjectCreate.model_validate({"name": name, "key_prefix": prefix or None})
        created = await projects.create_project(
            context_of(request), actor=me.principal.actor, owner=me.account.id, **body.settings()
        )
    except ValidationError as exc:
        return await _again(request, me.account.id, name, prefix, field_errors(exc), None)
    except KeyguardError as exc:
        # A refusal naming the prefix goes next to that field.
        message = refusal(exc)
        if exc.extra.get("field") == "key_prefix":
            beside = {"key_prefix": FieldError(message)}
            return await _again(request, me.account.id, name, prefix, beside, None, exc.status)
        return await _again(request, me.account.id, name, prefix, {}, message, exc.status)
    return await render(
        request,
        "dashboard/project_created.html",
        status=201,
        project=created.project,
        webhook_secret=created.webhook_secret,
    )


async def _again(
    request: Request,
    account_id: str,
    name: str,
    prefix: str,
    errors: Mapping[str, FieldError],
    error: str | None,
    status: int = 422,
) -> Response:
    found = await members.projects_of(context_of(request), account_id)
    return await render(
        request,
        "accounts/projects.html",
        status=status,
        projects=found,
        new_name=name,
        new_prefix=prefix,
        errors=errors,
        error=error,
    )
