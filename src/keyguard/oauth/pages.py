"""The authorization endpoint (RFC 6749 §3.1): a page where a signed-in person lets an
app act for them, in their language.

GET checks the client and the redirect URI before anything else (a wrong one is an
error page here, never a redirect), then the rest (errors go back to the app), then
asks the person to sign in, then shows the consent page: the app, its project, and the
scopes the person's role lets them grant. POST (the person's answer, CSRF-checked)
checks the whole request again from the form and sends the code or ``access_denied``
to the app. Pages are never framed (``frame-ancestors 'none'``) and carry no CORS
headers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote, urlencode, urlsplit

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from keyguard.api.deps import context_of
from keyguard.oauth import authorization, connected
from keyguard.oauth.authorization import AuthorizationRequest, AuthorizeFailed, Redirect
from keyguard.oauth.server import PATHS
from keyguard.projects import service as projects
from keyguard.web.headers import CONTENT_SECURITY_POLICY, protect
from keyguard.web.pages import PageError, person, read_form, redirect, render, require_person

router = APIRouter(include_in_schema=False)

AUTHORIZE = PATHS["authorization_endpoint"]
# The parameters carried from the GET to the consent form's POST.
CARRIED = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
)


def _to_app(answer: Redirect) -> Response:
    response = RedirectResponse(answer.location, status_code=303)
    protect(response)
    return response


def _single(raw: list[tuple[str, str]]) -> None:
    names = [name for name, _ in raw]
    if any(names.count(name) > 1 for name in CARRIED):
        raise PageError(400, "oauth.error.repeated")


async def _checked(request: Request, params: Mapping[str, str]) -> AuthorizationRequest | Redirect:
    try:
        return await authorization.check_request(context_of(request), params)
    except AuthorizeFailed as failed:
        raise PageError(400, failed.message_key) from None


@router.get(AUTHORIZE)
async def authorize(request: Request) -> Response:
    _single(request.query_params.multi_items())
    params = {name: request.query_params[name] for name in CARRIED if name in request.query_params}
    checked = await _checked(request, params)
    if isinstance(checked, Redirect):
        return _to_app(checked)
    me = await person(request)
    if me is None:
        back = AUTHORIZE + "?" + urlencode(params)
        response = RedirectResponse(f"/login?next={quote(back, safe='/')}", status_code=303)
        protect(response)
        return response
    role = me.roles.get(checked.client.project_id)
    if role is None:
        # Not a member of the app's project: nothing to grant (and nothing to show).
        not_member = "the person is not a member of the app's project"
        return _to_app(authorization.denied(context_of(request), checked, not_member))
    project = await projects.get_project(context_of(request), checked.client.project_id)
    page = await render(
        request,
        "oauth/consent.html",
        app_name=checked.client.name,
        project_name=project.name,
        scopes=sorted(authorization.granted(checked, role)),
        withheld=sorted(checked.scopes - authorization.granted(checked, role)),
        redirect_host=_host(checked.redirect_uri),
        params=params,
    )
    # The answer is a form whose response redirects to the app: CSP's form-action covers
    # that redirect too, so the page names the app's origin (and nothing else) there.
    page.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.replace(
        "form-action 'self'", f"form-action 'self' {_source(checked.redirect_uri)}"
    )
    return page


_ORIGIN = re.compile(r"[a-z][a-z0-9+.-]*://[A-Za-z0-9.:\[\]-]+")
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*:")


def _source(uri: str) -> str:
    """A CSP source for the redirect URI's origin (a private-use scheme: the scheme)."""
    parts = urlsplit(uri)
    origin = f"{parts.scheme}://{parts.netloc}" if parts.netloc else f"{parts.scheme}:"
    if _ORIGIN.fullmatch(origin) or _SCHEME.fullmatch(origin):
        return origin
    return "'none'"  # not expressible: the browser refuses to follow, nothing worse


def _host(uri: str) -> str:
    parts = urlsplit(uri)
    return parts.netloc or f"{parts.scheme}:"


@router.get("/account/apps")
async def connected_page(request: Request) -> Response:
    """Account > Apps: the apps this person let act for them, each to take back."""
    me = await require_person(request)
    apps = await connected.connected_apps(context_of(request), me.account.id)
    return await render(request, "oauth/connected.html", apps=apps)


@router.post("/account/apps/{app_id}/revoke")
async def disconnect(request: Request, app_id: str) -> Response:
    me = await require_person(request)
    await read_form(request)
    if not await connected.disconnect(context_of(request), me.account.id, app_id):
        raise PageError(404, "error.not_found")
    return redirect("/account/apps?flash=app_disconnected")


@router.post(AUTHORIZE)
async def decide(request: Request) -> Response:
    form = await read_form(request)
    me = await person(request)
    if me is None:
        raise PageError(401, "oauth.error.signed_out")
    params = {name: form.get(name) for name in CARRIED if name in form.values}
    checked = await _checked(request, params)
    if isinstance(checked, Redirect):
        return _to_app(checked)
    ctx = context_of(request)
    role = me.roles.get(checked.client.project_id)
    if role is None or form.get("decision") != "allow":
        return _to_app(authorization.denied(ctx, checked))
    scopes = authorization.granted(checked, role)
    return _to_app(
        await authorization.issue_code(ctx, checked, account_id=me.account.id, scopes=scopes)
    )
