"""The people pages: my projects, a project's members (owners invite, change roles and
remove), invitation links, and open sign-up when ``KEYGUARD_SIGNUP=open``."""

from __future__ import annotations

from collections.abc import Awaitable

from fastapi import APIRouter, Request
from starlette.responses import Response

from keyguard.accounts import members, signin, signup
from keyguard.accounts.errors import InvitationInvalid, SignUpClosed
from keyguard.accounts.pages import DEVICE_COOKIE, client_of, signed_in_response
from keyguard.api.deps import context_of
from keyguard.engine.permissions import GRANTS, Permission, Role, may
from keyguard.errors import Conflict, NotFound, RateLimited, RoleTooLow, ValidationFailed
from keyguard.web.pages import (
    PageError,
    person,
    read_form,
    redirect,
    render,
    require_person,
    session_token,
    split_error,
)

router = APIRouter(include_in_schema=False)

ROLES = [role.value for role in Role]


@router.get("/projects")
async def projects_page(request: Request) -> Response:
    me = await require_person(request)
    found = await members.projects_of(context_of(request), me.account.id)
    return await render(
        request, "accounts/projects.html", projects=found, new_name="", new_prefix="", error=None
    )


async def members_form(
    request: Request,
    project_id: str,
    *,
    error: str | None = None,
    errors: dict[str, str] | None = None,
    invite_email: str = "",
    status: int = 200,
) -> Response:
    me = await require_person(request)
    try:
        name, people, invitations = await members.members(
            context_of(request), me.principal, project_id
        )
    except NotFound:
        raise PageError(404, "error.not_found") from None
    return await render(
        request,
        "accounts/members.html",
        status=status,
        project_id=project_id,
        project_name=name,
        members=people,
        invitations=invitations,
        roles=ROLES,
        grants=GRANTS,
        can_manage=may(me.roles.get(project_id), Permission.MANAGE_MEMBERS),
        error=error,
        errors=errors or {},
        invite_email=invite_email,
    )


@router.get("/projects/{project_id}/members")
async def members_page(request: Request, project_id: str) -> Response:
    return await members_form(request, project_id)


async def _managing(
    request: Request,
    project_id: str,
    change: Awaitable[object],
    *,
    invite_email: str | None = None,
) -> Response:
    """Run a member change; refusals come back as the members page with the reason
    (beside the invitation's email field when it is about that)."""
    try:
        await change
    except NotFound:
        raise PageError(404, "error.not_found") from None
    except RoleTooLow:
        raise PageError(403, "error.role_too_low") from None
    except (Conflict, ValidationFailed, RateLimited) as exc:
        inviting = invite_email is not None
        error, errors = split_error(exc, {"email": "email"} if inviting else {})
        return await members_form(
            request,
            project_id,
            error=error,
            errors=errors,
            invite_email=invite_email or "",
            status=exc.status,
        )
    return redirect(f"/projects/{project_id}/members?flash=members_changed")


@router.post("/projects/{project_id}/members/invite")
async def invite(request: Request, project_id: str) -> Response:
    me = await require_person(request)
    form = await read_form(request)
    change = members.invite(
        context_of(request), me.principal, project_id, form.get("email"), form.get("role")
    )
    return await _managing(request, project_id, change, invite_email=form.get("email"))


@router.post("/projects/{project_id}/members/{account_id}/role")
async def change_role(request: Request, project_id: str, account_id: str) -> Response:
    me = await require_person(request)
    form = await read_form(request)
    change = members.change_role(
        context_of(request), me.principal, project_id, account_id, form.get("role")
    )
    return await _managing(request, project_id, change)


@router.post("/projects/{project_id}/members/{account_id}/remove")
async def remove(request: Request, project_id: str, account_id: str) -> Response:
    me = await require_person(request)
    await read_form(request)
    change = members.remove(context_of(request), me.principal, project_id, account_id)
    return await _managing(request, project_id, change)


@router.post("/projects/{project_id}/invitations/{invitation_id}/revoke")
async def revoke_invitation(request: Request, project_id: str, invitation_id: str) -> Response:
    me = await require_person(request)
    await read_form(request)
    change = members.revoke_invitation(context_of(request), me.principal, project_id, invitation_id)
    return await _managing(request, project_id, change)


# ---- invitation links ---------------------------------------------------------------


async def _invitation_form(
    request: Request,
    token: str,
    *,
    error: str | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    try:
        found = await members.invitation(context_of(request), token)
    except InvitationInvalid:
        raise PageError(410, "error.invitation_invalid") from None
    return await render(
        request,
        "accounts/invitation.html",
        status=status,
        invitation=found,
        token=token,
        error=error,
        errors=errors or {},
    )


@router.get("/invitations/{token}")
async def invitation_page(request: Request, token: str) -> Response:
    return await _invitation_form(request, token)


@router.post("/invitations/{token}")
async def accept_invitation(request: Request, token: str) -> Response:
    form = await read_form(request)
    ctx = context_of(request)
    me = await person(request)
    try:
        account_id = await members.accept(
            ctx,
            token,
            account_id=me.account.id if me else None,
            password=form.get("password"),
        )
    except InvitationInvalid:
        raise PageError(410, "error.invitation_invalid") from None
    except (Conflict, ValidationFailed) as exc:
        error, errors = split_error(exc, {"password": "password"})
        return await _invitation_form(request, token, error=error, errors=errors, status=exc.status)
    if me is not None:
        return redirect("/projects?flash=invitation_accepted")
    # A new account: the password just chosen is the sign-in.
    done = await signin.finish(
        ctx,
        account_id,
        client_of(request),
        method="password",
        device_cookie=request.cookies.get(DEVICE_COOKIE),
        replaces=session_token(request),
    )
    return signed_in_response(request, done, "/projects?flash=invitation_accepted")


# ---- open sign-up -------------------------------------------------------------------


def _open(request: Request) -> None:
    if context_of(request).settings.signup != "open":
        raise PageError(404, "error.sign_up_closed")


@router.get("/signup")
async def signup_page(request: Request) -> Response:
    _open(request)
    return await render(request, "accounts/signup.html", email="", error=None)


@router.post("/signup")
async def signup_start(request: Request) -> Response:
    _open(request)
    form = await read_form(request)
    try:
        await signup.start(context_of(request), form.get("email"), client_of(request))
    except ValidationFailed as exc:
        error, errors = split_error(exc, {"email": "email"})
        return await render(
            request,
            "accounts/signup.html",
            status=422,
            email=form.get("email"),
            error=error,
            errors=errors,
        )
    except SignUpClosed:  # pragma: no cover - _open checked it
        raise PageError(404, "error.sign_up_closed") from None
    # The same page whether or not the email already has an account.
    return redirect("/signup?flash=signup_sent")


async def _finish_form(
    request: Request,
    token: str,
    *,
    error: str | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    email = await signup.pending_email(context_of(request), token)
    if email is None:
        raise PageError(410, "error.invitation_invalid")
    return await render(
        request,
        "accounts/signup_finish.html",
        status=status,
        email=email,
        token=token,
        error=error,
        errors=errors or {},
    )


@router.get("/signup/{token}")
async def signup_finish_page(request: Request, token: str) -> Response:
    _open(request)
    return await _finish_form(request, token)


@router.post("/signup/{token}")
async def signup_finish(request: Request, token: str) -> Response:
    _open(request)
    form = await read_form(request)
    ctx = context_of(request)
    try:
        account_id = await signup.finish(ctx, token, form.get("password"))
    except InvitationInvalid:
        raise PageError(410, "error.invitation_invalid") from None
    except ValidationFailed as exc:
        error, errors = split_error(exc, {"password": "password"})
        return await _finish_form(request, token, error=error, errors=errors, status=exc.status)
    done = await signin.finish(
        ctx,
        account_id,
        client_of(request),
        method="password",
        device_cookie=request.cookies.get(DEVICE_COOKIE),
        replaces=session_token(request),
    )
    return signed_in_response(request, done, "/projects?flash=signed_up")
