"""The passkey pages: add, rename and remove passkeys on the security page, and sign in
with one from /login.

The ceremony needs a script (``static/passkeys.js``): it asks ``…/options`` (a POST with
the form's CSRF token) for a challenge, hands it to the browser's WebAuthn API, puts the
answer into the form's hidden ``credential`` field and submits the form, so the outcome
is an ordinary page with its errors and flash messages.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from keyguard.accounts import passkeys, sessions
from keyguard.accounts.errors import PasskeyInvalid
from keyguard.accounts.pages import (
    DEVICE_COOKIE,
    client_of,
    login_form,
    security_form,
    sensitive,
    signed_in_response,
    throttled_message,
)
from keyguard.api.deps import context_of
from keyguard.errors import Conflict, NotFound, RateLimited, ValidationFailed
from keyguard.i18n import translate
from keyguard.web.headers import protect
from keyguard.web.pages import PageError, read_form, redirect, require_person, session_token

router = APIRouter(include_in_schema=False)

# An attestation with its certificate chain is a few kilobytes; more is not a passkey.
CREDENTIAL_MAX = 16_384


def _options(options: str) -> Response:
    return protect(Response(options, media_type="application/json"))


def _refusal(message: str, status: int, *, go: str | None = None) -> Response:
    body: dict[str, str] = {"message": message}
    if go:
        body["redirect"] = go
    return protect(JSONResponse(body, status_code=status))


@router.post("/account/passkeys/options")
async def registration_options(request: Request) -> Response:
    me = await require_person(request)
    await read_form(request)
    ctx = context_of(request)
    if not sessions.is_recent(me, ctx):
        # The script follows this to /account/reauth, and comes back to the security page.
        return _refusal(
            translate("reauth.required"), 403, go="/account/reauth?next=/account/security"
        )
    try:
        return _options(await passkeys.registration_options(ctx, me.account.id))
    except (PasskeyInvalid, Conflict) as exc:
        return _refusal(exc.detail or exc.title, exc.status)


@router.post("/account/passkeys")
async def add_passkey(request: Request) -> Response:
    me = await sensitive(request)
    form = await read_form(request, max_part_size=CREDENTIAL_MAX)
    try:
        await passkeys.register(
            context_of(request),
            me.account.id,
            form.get("name"),
            form.get("credential"),
            actor=me.account.id,
        )
    except (PasskeyInvalid, ValidationFailed, Conflict) as exc:
        error = exc.detail or translate("passkeys.failed")
        return await security_form(request, error=error, status=exc.status)
    return redirect("/account/security?flash=passkey_added")


@router.post("/account/passkeys/{passkey_id}/rename")
async def rename_passkey(request: Request, passkey_id: str) -> Response:
    me = await sensitive(request)
    form = await read_form(request)
    try:
        await passkeys.rename(
            context_of(request), me.account.id, passkey_id, form.get("name"), actor=me.account.id
        )
    except ValidationFailed as exc:
        return await security_form(request, error=exc.detail, status=exc.status)
    except NotFound:
        raise PageError(404, "error.not_found") from None
    return redirect("/account/security?flash=passkey_renamed")


@router.post("/account/passkeys/{passkey_id}/remove")
async def remove_passkey(request: Request, passkey_id: str) -> Response:
    me = await sensitive(request)
    await read_form(request)
    try:
        await passkeys.remove(context_of(request), me.account.id, passkey_id, actor=me.account.id)
    except NotFound:
        raise PageError(404, "error.not_found") from None
    return redirect("/account/security?flash=passkey_removed")


@router.post("/login/passkey/options")
async def sign_in_options(request: Request) -> Response:
    await read_form(request)
    try:
        return _options(await passkeys.sign_in_options(context_of(request), client_of(request)))
    except RateLimited as exc:
        response = _refusal(throttled_message(exc), 429)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except PasskeyInvalid as exc:
        return _refusal(exc.detail or exc.title, 400)


@router.post("/login/passkey")
async def sign_in(request: Request) -> Response:
    form = await read_form(request, max_part_size=CREDENTIAL_MAX)
    next_path = form.get("next")
    try:
        done = await passkeys.sign_in(
            context_of(request),
            form.get("credential"),
            client_of(request),
            device_cookie=request.cookies.get(DEVICE_COOKIE),
            replaces=session_token(request),
        )
    except PasskeyInvalid:
        error = translate("passkeys.sign_in_failed")
        return await login_form(request, next_path=next_path, error=error, status=401)
    except RateLimited as exc:
        headers = {"Retry-After": str(exc.retry_after)}
        error = throttled_message(exc)
        return await login_form(
            request, next_path=next_path, error=error, status=429, headers=headers
        )
    return signed_in_response(request, done, next_path)
