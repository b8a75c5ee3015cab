"""The account pages (CONTRACT §9): sign-in, two-factor, security settings, sessions.

Every POST checks its CSRF token (``read_form``); sensitive changes (password,
two-factor) need a recent sign-in and send the person through ``/account/reauth`` first.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from keyguard.accounts import email_change, passkeys, second_factor, sessions, signin
from keyguard.accounts import service as accounts
from keyguard.accounts.alerts import DEVICE_COOKIE_DAYS
from keyguard.accounts.errors import InvitationInvalid, SecondFactorInvalid, SignInFailed
from keyguard.accounts.sessions import Client
from keyguard.accounts.useragent import describe
from keyguard.accounts.views import SignedIn
from keyguard.api.deps import client_ip, context_of
from keyguard.errors import Conflict, NotFound, RateLimited, ValidationFailed
from keyguard.i18n import LANGUAGES, translate
from keyguard.mail import service as mail
from keyguard.web.pages import (
    PageError,
    Redirect,
    local_path,
    read_form,
    redirect,
    render,
    require_person,
    session_token,
    split_error,
)
from keyguard.wire import SESSION_COOKIE

router = APIRouter(include_in_schema=False)

PENDING_COOKIE = "__Host-keyguard-pending"
DEVICE_COOKIE = "__Host-keyguard-device"


def client_of(request: Request) -> Client:
    return Client(ip=client_ip(request), user_agent=request.headers.get("user-agent", "")[:300])


def set_cookie(response: Response, name: str, value: str, *, max_age: int | None = None) -> None:
    # __Host-: Secure, no Domain, Path=/ (RFC 6265bis); a subdomain cannot set or read it.
    response.set_cookie(
        name, value, max_age=max_age, path="/", secure=True, httponly=True, samesite="lax"
    )


def signed_in_response(request: Request, done: signin.SignedInNow, next_path: str) -> Response:
    response = redirect(local_path(next_path))
    # A session cookie (no Max-Age): the server-side timeouts end the session anyway.
    set_cookie(response, SESSION_COOKIE, done.session.token)
    response.delete_cookie(PENDING_COOKIE, path="/", secure=True, httponly=True)
    if done.device_cookie is not None:
        set_cookie(response, DEVICE_COOKIE, done.device_cookie, max_age=DEVICE_COOKIE_DAYS * 86400)
    return response


def throttled_message(exc: RateLimited) -> str:
    return translate("login.throttled", seconds=exc.retry_after)


async def sensitive(request: Request) -> SignedIn:
    """The signed-in person, who proved it recently (else off to /account/reauth)."""
    me = await require_person(request)
    if not sessions.is_recent(me, context_of(request)):
        raise Redirect(f"/account/reauth?next={request.url.path}")
    return me


# ---- sign in / out ------------------------------------------------------------------


async def login_form(
    request: Request,
    *,
    email: str = "",
    next_path: str | None = None,
    error: str | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """The sign-in page, again with an error where a sign-in failed."""
    page = await render(
        request,
        "accounts/login.html",
        status=status,
        email=email,
        next=local_path(next_path),
        error=error,
        passkeys_available=passkeys.relying_party(context_of(request).settings) is not None,
        signup_open=context_of(request).settings.signup == "open",
    )
    page.headers.update(headers or {})
    return page


@router.get("/login")
async def login_page(request: Request) -> Response:
    if await sessions.resolve(context_of(request), session_token(request)):
        return redirect(local_path(request.query_params.get("next")))
    return await login_form(request, next_path=request.query_params.get("next"))


@router.post("/login")
async def login(request: Request) -> Response:
    form = await read_form(request)
    email, password, next_path = form.get("email"), form.get("password"), form.get("next")

    async def again(error: str, status: int, headers: dict[str, str] | None = None) -> Response:
        return await login_form(
            request, email=email, next_path=next_path, error=error, status=status, headers=headers
        )

    if not email or not password:
        return await again(translate("login.required"), 422)
    try:
        result = await signin.with_password(
            context_of(request),
            email,
            password,
            client_of(request),
            device_cookie=request.cookies.get(DEVICE_COOKIE),
            replaces=session_token(request),
        )
    except SignInFailed:
        return await again(translate("login.failed"), 401)
    except RateLimited as exc:
        return await again(throttled_message(exc), 429, {"Retry-After": str(exc.retry_after)})
    if isinstance(result, signin.SecondFactorNeeded):
        response = redirect(f"/login/two-factor?next={local_path(next_path)}")
        set_cookie(response, PENDING_COOKIE, result.pending_token, max_age=signin.PENDING_SECONDS)
        return response
    return signed_in_response(request, result, next_path)


@router.get("/login/two-factor")
async def two_factor_page(request: Request) -> Response:
    ctx = context_of(request)
    if await signin.pending_account(ctx, request.cookies.get(PENDING_COOKIE)) is None:
        return redirect("/login")
    return await render(
        request,
        "accounts/two_factor_prompt.html",
        next=local_path(request.query_params.get("next")),
        error=None,
    )


@router.post("/login/two-factor")
async def two_factor(request: Request) -> Response:
    form = await read_form(request)
    next_path = form.get("next")

    async def again(error: str, status: int) -> Response:
        return await render(
            request,
            "accounts/two_factor_prompt.html",
            status=status,
            next=local_path(next_path),
            error=error,
        )

    ctx = context_of(request)
    pending = request.cookies.get(PENDING_COOKIE)
    if await signin.pending_account(ctx, pending) is None:
        return redirect("/login?flash=sign_in_expired")
    try:
        done = await signin.with_code(
            ctx,
            pending,
            form.get("code"),
            client_of(request),
            device_cookie=request.cookies.get(DEVICE_COOKIE),
            replaces=session_token(request),
        )
    except SecondFactorInvalid:
        return await again(translate("two_factor.prompt.failed"), 401)
    except RateLimited as exc:
        page = await again(throttled_message(exc), 429)
        page.headers["Retry-After"] = str(exc.retry_after)
        return page
    return signed_in_response(request, done, next_path)


@router.post("/logout")
async def logout(request: Request) -> Response:
    await read_form(request)
    await signin.sign_out(context_of(request), session_token(request))
    response = redirect("/login?flash=signed_out")
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True)
    return response


# ---- account settings ---------------------------------------------------------------


@router.get("/account")
async def account_home(request: Request) -> Response:
    await require_person(request)
    return redirect("/account/security")


@router.get("/account/security")
async def security_page(request: Request) -> Response:
    return await security_form(request)


async def security_form(
    request: Request,
    *,
    error: str | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    """The security page, again with an error where a change was refused."""
    me = await require_person(request)
    ctx = context_of(request)
    left = await second_factor.remaining_codes(ctx, me.account.id)
    return await render(
        request,
        "accounts/security.html",
        codes_left=left,
        passkeys=await passkeys.list_passkeys(ctx, me.account.id),
        passkeys_available=passkeys.relying_party(ctx.settings) is not None,
        languages=LANGUAGES,
        error=error,
        errors=errors or {},
        status=status,
    )


@router.post("/account/language")
async def change_language(request: Request) -> Response:
    """The person's own language (``""`` follows the browser): only ever their own
    account, the one the session belongs to."""
    me = await require_person(request)
    form = await read_form(request)
    chosen = form.get("language")
    try:
        await accounts.set_language(context_of(request), me, chosen or None)
    except ValidationFailed as exc:
        error, errors = split_error(exc, {"language": "language"})
        return await security_form(request, error=error, errors=errors, status=422)
    return redirect("/account/security?flash=language_changed")


@router.get("/account/reauth")
async def reauth_page(request: Request) -> Response:
    await require_person(request)
    return await render(
        request,
        "accounts/reauth.html",
        next=local_path(request.query_params.get("next"), "/account/security"),
        error=None,
    )


@router.post("/account/reauth")
async def reauth(request: Request) -> Response:
    me = await require_person(request)
    form = await read_form(request)
    next_path = local_path(form.get("next"), "/account/security")
    try:
        token = await signin.reauthenticate(
            context_of(request), me, form.get("password"), form.get("code"), client_of(request)
        )
    except (SignInFailed, SecondFactorInvalid):
        error = translate("login.failed")
        return await render(
            request, "accounts/reauth.html", status=401, next=next_path, error=error
        )
    except RateLimited as exc:
        page = await render(
            request,
            "accounts/reauth.html",
            status=429,
            next=next_path,
            error=throttled_message(exc),
        )
        page.headers["Retry-After"] = str(exc.retry_after)
        return page
    response = redirect(next_path)
    set_cookie(response, SESSION_COOKIE, token)
    return response


@router.get("/account/password")
async def password_page(request: Request) -> Response:
    await sensitive(request)
    return await render(request, "accounts/password.html", error=None)


@router.post("/account/password")
async def change_password(request: Request) -> Response:
    me = await sensitive(request)
    form = await read_form(request)
    ctx = context_of(request)

    async def again(status: int, error: str | None, errors: dict[str, str]) -> Response:
        page = "accounts/password.html"
        return await render(request, page, status=status, error=error, errors=errors)

    try:
        await signin.check_current_password(ctx, me, form.get("current"), client_of(request))
        await accounts.change_password(ctx, me, form.get("new"), recent=sessions.is_recent(me, ctx))
    except SignInFailed:
        return await again(422, None, {"current": translate("password.current_wrong")})
    except RateLimited as exc:
        page = await again(429, throttled_message(exc), {})
        page.headers["Retry-After"] = str(exc.retry_after)
        return page
    except ValidationFailed as exc:
        return await again(422, *split_error(exc, {"password": "new"}))
    return redirect("/account/security?flash=password_changed")


@router.get("/account/email")
async def email_page(request: Request) -> Response:
    await sensitive(request)
    return await render(request, "accounts/email.html", email="", error=None)


@router.post("/account/email")
async def request_email_change(request: Request) -> Response:
    me = await sensitive(request)
    form = await read_form(request)
    ctx = context_of(request)
    try:
        await email_change.request_change(
            ctx, me, form.get("email"), recent=sessions.is_recent(me, ctx)
        )
    except ValidationFailed as exc:
        error, errors = split_error(exc, {"email": "email"})
        return await render(
            request,
            "accounts/email.html",
            status=422,
            email=form.get("email"),
            error=error,
            errors=errors,
        )
    except RateLimited as exc:
        error = throttled_message(exc)
        page = await render(
            request, "accounts/email.html", status=429, email=form.get("email"), error=error
        )
        page.headers["Retry-After"] = str(exc.retry_after)
        return page
    # The same answer whether or not the address is free: it gets a link or a notice.
    return redirect("/account/security?flash=email_link_sent")


@router.get("/account/email/confirm/{token}")
async def email_confirm_page(request: Request, token: str) -> Response:
    me = await require_person(request)
    new = await email_change.pending_email(context_of(request), me, token)
    if new is None:
        raise PageError(410, "error.invitation_invalid")
    return await render(request, "accounts/email_confirm.html", new=new, token=token)


@router.post("/account/email/confirm/{token}")
async def confirm_email_change(request: Request, token: str) -> Response:
    me = await require_person(request)
    await read_form(request)
    try:
        await email_change.confirm(context_of(request), me, token)
    except InvitationInvalid:
        raise PageError(410, "error.invitation_invalid") from None
    except Conflict as exc:
        return await security_form(request, error=exc.detail, status=409)
    return redirect("/account/security?flash=email_changed")


@router.post("/account/two-factor/start")
async def two_factor_start(request: Request) -> Response:
    me = await sensitive(request)
    await read_form(request)
    try:
        await second_factor.start_enrolment(context_of(request), me.account.id)
    except Conflict:
        return redirect("/account/security")
    return redirect("/account/two-factor/confirm")


@router.get("/account/two-factor/confirm")
async def two_factor_enrol_page(request: Request) -> Response:
    me = await sensitive(request)
    enrolment = await second_factor.pending_enrolment(context_of(request), me.account.id)
    if enrolment is None:
        return redirect("/account/security")
    return await render(request, "accounts/two_factor_enrol.html", enrolment=enrolment, error=None)


@router.post("/account/two-factor/confirm")
async def two_factor_confirm(request: Request) -> Response:
    me = await sensitive(request)
    form = await read_form(request)
    ctx = context_of(request)
    try:
        codes = await second_factor.confirm_enrolment(
            ctx, me.account.id, form.get("code"), actor=me.account.id
        )
    except (SecondFactorInvalid, RateLimited):
        enrolment = await second_factor.pending_enrolment(ctx, me.account.id)
        if enrolment is None:
            return redirect("/account/security")
        error = translate("two_factor.enrol.failed")
        return await render(
            request, "accounts/two_factor_enrol.html", status=422, enrolment=enrolment, error=error
        )
    except Conflict:
        return redirect("/account/security")
    return await render(request, "accounts/recovery_codes.html", codes=codes.codes)


@router.post("/account/two-factor/recovery-codes")
async def regenerate_codes(request: Request) -> Response:
    me = await sensitive(request)
    await read_form(request)
    try:
        codes = await second_factor.regenerate_codes(
            context_of(request), me.account.id, actor=me.account.id
        )
    except Conflict:
        return redirect("/account/security")
    return await render(request, "accounts/recovery_codes.html", codes=codes.codes)


@router.post("/account/two-factor/disable")
async def two_factor_disable(request: Request) -> Response:
    me = await sensitive(request)
    form = await read_form(request)
    try:
        await second_factor.disable(
            context_of(request), me.account.id, form.get("code"), actor=me.account.id
        )
    except (SecondFactorInvalid, RateLimited):
        error = translate("security.two_factor.disable_failed")
        return await security_form(request, error=error, status=422)
    return redirect("/account/security?flash=two_factor_disabled")


# ---- sessions and email -------------------------------------------------------------


@router.get("/account/sessions")
async def sessions_page(request: Request) -> Response:
    me = await require_person(request)
    found = await sessions.list_sessions(context_of(request), me.account.id)
    return await render(request, "accounts/sessions.html", sessions=found, describe=describe)


@router.post("/account/sessions/revoke-others")
async def revoke_other_sessions(request: Request) -> Response:
    me = await require_person(request)
    await read_form(request)
    await sessions.revoke_others(context_of(request), me)
    return redirect("/account/sessions?flash=sessions_revoked")


@router.post("/account/sessions/{session_id}/revoke")
async def revoke_session(request: Request, session_id: str) -> Response:
    me = await require_person(request)
    await read_form(request)
    try:
        await sessions.revoke(
            context_of(request), me.account.id, session_id, actor=me.account.id, reason="revoked"
        )
    except NotFound:
        raise PageError(404, "error.not_found") from None
    return redirect("/account/sessions?flash=session_revoked")


@router.get("/account/outbox")
async def outbox_page(request: Request) -> Response:
    me = await require_person(request)
    ctx = context_of(request)
    messages = await mail.for_account(ctx, me.account.id)
    return await render(
        request, "accounts/outbox.html", messages=messages, smtp=bool(ctx.settings.smtp_url)
    )
