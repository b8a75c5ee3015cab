"""Rendering a page, reading a form, knowing who is signed in.

Every page goes through :func:`render` (security headers, the CSRF token, the message
catalog) and every form through :func:`read_form` (size limits, the CSRF check).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, RedirectResponse, Response

from keyguard.accounts import sessions
from keyguard.accounts.views import SignedIn
from keyguard.api.deps import context_of
from keyguard.engine.principals import session_cookie
from keyguard.errors import KeyguardError
from keyguard.i18n import DEFAULT_LANGUAGE, has, translate
from keyguard.web import csrf
from keyguard.web.headers import protect

_env = Environment(
    loader=PackageLoader("keyguard.web", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.globals["t"] = translate


class PageError(Exception):
    """A page-level refusal, rendered as an HTML page (not problem+json)."""

    def __init__(self, status: int, message_key: str) -> None:
        super().__init__(message_key)
        self.status = status
        self.message_key = message_key


class Redirect(Exception):
    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


@dataclass(frozen=True, slots=True)
class Form:
    values: FormData

    def get(self, name: str) -> str:
        value = self.values.get(name)
        return value if isinstance(value, str) else ""


def session_token(request: Request) -> str | None:
    """The session cookie, read by the same parser the API door uses."""
    return session_cookie(request.headers.get("cookie"))


async def person(request: Request) -> SignedIn | None:
    """Who the session cookie belongs to (once per request)."""
    state = request.scope.setdefault("state", {})
    if "keyguard_person" not in state:
        token = session_token(request)
        state["keyguard_person"] = await sessions.resolve(context_of(request), token)
    found: SignedIn | None = state["keyguard_person"]
    return found


async def require_person(request: Request) -> SignedIn:
    found = await person(request)
    if found is None:
        back = f"/login?next={quote(local_path(request.url.path), safe='/')}"
        # A cookie that no longer opens anything: say why the person is asked again.
        ended = "&flash=session_ended" if session_token(request) else ""
        raise Redirect(back + ended)
    return found


def local_path(target: str | None, default: str = "/account") -> str:
    """``target`` if it is a path on this site, else ``default`` (no open redirects:
    ``//evil.example``, ``/\\evil.example`` and absolute URLs are refused)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    if any(c in target for c in "\\\r\n\t") or len(target) > 500:
        return default
    return target


def _binding(request: Request, signed_in: SignedIn | None) -> str | None:
    if signed_in is not None:
        return csrf.session_binding(sessions.token_hash(session_token(request) or ""))
    anonymous = request.cookies.get(csrf.ANONYMOUS_COOKIE)
    return csrf.anonymous_binding(anonymous) if anonymous else None


async def read_form(request: Request, *, max_part_size: int = 4096) -> Form:
    """The submitted form, after its CSRF token was checked (403 page if not)."""
    try:
        values = await request.form(max_files=0, max_fields=20, max_part_size=max_part_size)
    except HTTPException:
        raise PageError(400, "error.form_invalid") from None
    token = values.get(csrf.FIELD)
    binding = _binding(request, await person(request))
    key = context_of(request).account_keys.csrf
    if not csrf.valid(key, binding, token if isinstance(token, str) else None):
        raise PageError(403, "error.csrf")
    return Form(values)


async def render(
    request: Request, template: str, *, status: int = 200, **values: Any
) -> HTMLResponse:
    signed_in = await person(request)
    binding = _binding(request, signed_in)
    new_binding = None
    if binding is None:
        new_binding = csrf.new_binding()
        binding = csrf.anonymous_binding(new_binding)
    flash = request.query_params.get("flash")
    values.setdefault("errors", {})  # messages next to their fields, by field name
    page = _env.get_template(template).render(
        request=request,
        me=signed_in,
        csrf_field=csrf.FIELD,
        csrf_token=csrf.token_for(context_of(request).account_keys.csrf, binding),
        language=DEFAULT_LANGUAGE,
        flash=f"flash.{flash}" if flash and has(f"flash.{flash}") else None,
        **values,
    )
    response = HTMLResponse(page, status_code=status)
    if new_binding is not None:
        response.set_cookie(
            csrf.ANONYMOUS_COOKIE, new_binding, secure=True, httponly=True, samesite="lax"
        )
    return protect(response)  # type: ignore[return-value]


def split_error(exc: KeyguardError, fields: Mapping[str, str]) -> tuple[str | None, dict[str, str]]:
    """A refusal as (the message at the top, messages next to their fields): an error
    naming one of ``fields`` (the service's field name -> the form's) goes beside it."""
    named = exc.extra.get("field")
    message = exc.detail or exc.title
    if isinstance(named, str) and named in fields:
        return None, {fields[named]: message}
    return message, {}


def redirect(location: str) -> RedirectResponse:
    response = RedirectResponse(location, status_code=303)
    protect(response)
    return response


def install(app: FastAPI) -> None:
    async def on_page_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageError)
        return await render(request, "error.html", status=exc.status, message_key=exc.message_key)

    async def on_redirect(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Redirect)
        return redirect(exc.location)

    app.add_exception_handler(PageError, on_page_error)
    app.add_exception_handler(Redirect, on_redirect)


def message(key: str, **fields: Any) -> str:
    return translate(key, **fields)
