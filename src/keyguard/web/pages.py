"""Rendering a page, reading a form, knowing who is signed in.

Every page goes through :func:`render` (security headers, the CSRF token, the message
catalog) and every form through :func:`read_form` (size limits, the CSRF check).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote

from babel.dates import format_date, format_time
from babel.numbers import format_decimal
from fastapi import FastAPI, Request
from jinja2 import Environment, PackageLoader, StrictUndefined, pass_context, select_autoescape
from jinja2.runtime import Context
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from keyguard import i18n
from keyguard.accounts import sessions
from keyguard.accounts.views import SignedIn
from keyguard.api.deps import context_of
from keyguard.engine.principals import session_cookie
from keyguard.errors import KeyguardError
from keyguard.i18n import DEFAULT_LANGUAGE, LOCALES, has, translate
from keyguard.web import csrf
from keyguard.web.headers import protect

_env = Environment(
    loader=PackageLoader("keyguard.web", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _language_of(context: Context) -> str:
    language = context.get("language")
    return language if isinstance(language, str) else DEFAULT_LANGUAGE


@pass_context
def _t(context: Context, key: str, /, **fields: Any) -> str:
    """``t("key", name=…)`` in a template: the message in the page's language."""
    return translate(key, _language_of(context), **fields)


@pass_context
def _datetime(context: Context, value: datetime | None) -> str:
    """``{{ when|datetime }}``: date and time for the page's locale, in UTC
    (``Mar 5, 2025, 2:30 PM UTC``, ``5 mars 2025, 14 h 30 UTC``)."""
    if value is None:
        return ""
    locale = LOCALES[_language_of(context)]
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    day = format_date(value, "medium", locale=locale)
    time = format_time(value, "short", tzinfo=UTC, locale=locale).replace(" ", "\u00a0")
    return f"{day}, {time}\u00a0UTC"  # the time never breaks across lines


@pass_context
def _date(context: Context, value: date | None) -> str:
    """``{{ day|date }}``: the date alone (``Mar 5, 2025``, ``5 mars 2025``)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).date()
    return format_date(value, "medium", locale=LOCALES[_language_of(context)])


@pass_context
def _number(context: Context, value: float | int | None) -> str:
    """``{{ n|number }}``: grouped for the page's locale (``1,234.5``, ``1 234,5``)."""
    if value is None:
        return ""
    return format_decimal(value, locale=LOCALES[_language_of(context)])


_env.globals["t"] = _t


# ---- forms that make a secret: sent once ------------------------------------------
# A page showing a new secret answers a POST; reloading it, or going back, would send
# that POST again (a second regeneration kills the secret just copied, a second rotation
# makes a second successor). Such forms carry a fresh random value, spent on the first
# submission: a second one gets the "already sent" page. (Not a CSRF defence: the CSRF
# token is that. A form without the value is refused too.)
ONCE_FIELD = "once"
_ONCE_TTL = 24 * 3600


def _new_once() -> str:
    return secrets.token_urlsafe(16)


_env.globals["new_once"] = _new_once


async def spend_once(request: Request, form: Form) -> None:
    """Refuse (409 page) a form whose one-time value is missing or was already spent."""
    value = form.get(ONCE_FIELD)
    if len(value) != 22 or not value.replace("-", "").replace("_", "").isalnum():
        raise PageError(400, "error.form_invalid")
    replay = context_of(request).state.replay_guard
    if not await replay.first_use(f"form-once:{value}", _ONCE_TTL):
        raise PageError(409, "error.form_used")


_env.filters["datetime"] = _datetime
_env.filters["date"] = _date
_env.filters["number"] = _number


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

    def has_file(self, name: str) -> bool:
        """Whether a file was chosen for ``name`` (a form without one sends no file)."""
        value = self.values.get(name)
        return value is not None and not isinstance(value, str) and bool(value.filename)

    async def file_text(self, name: str, limit: int) -> str | None:
        """An uploaded file's text (UTF-8), None when none was sent or it is larger than
        ``limit`` bytes or not text."""
        value = self.values.get(name)
        if value is None or isinstance(value, str):
            return None
        try:
            data = await value.read(limit + 1)
        finally:
            await value.close()  # its spooled temporary file
        if not data or len(data) > limit:
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return None


def session_token(request: Request) -> str | None:
    """The session cookie, read by the same parser the API door uses."""
    return session_cookie(request.headers.get("cookie"))


async def person(request: Request) -> SignedIn | None:
    """Who the session cookie belongs to (once per request)."""
    state = request.scope.setdefault("state", {})
    if "keyguard_person" not in state:
        token = session_token(request)
        found = state["keyguard_person"] = await sessions.resolve(context_of(request), token)
        state["keyguard_language"] = i18n.use(language_for(request, found))
    person_found: SignedIn | None = state["keyguard_person"]
    return person_found


def language_for(request: Request, signed_in: SignedIn | None) -> str:
    """The person's own setting, else their browser's ``Accept-Language``, else English."""
    if signed_in is not None and signed_in.account.language in i18n.LANGUAGES:
        return signed_in.account.language
    return i18n.negotiate(request.headers.get("accept-language"))


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
    if any(c in target for c in "\\\r\n\t") or len(target) > 4000:
        return default
    return target


def _binding(request: Request, signed_in: SignedIn | None) -> str | None:
    if signed_in is not None:
        return csrf.session_binding(sessions.token_hash(session_token(request) or ""))
    anonymous = request.cookies.get(csrf.ANONYMOUS_COOKIE)
    return csrf.anonymous_binding(anonymous) if anonymous else None


async def read_form(request: Request, *, max_part_size: int = 4096, max_files: int = 0) -> Form:
    """The submitted form, after its CSRF token was checked (403 page if not); files
    only where a page takes them (``max_files``; their size is bounded by the edge's
    body limit, ``max_part_size`` bounds the other fields)."""
    try:
        values = await request.form(max_files=max_files, max_fields=20, max_part_size=max_part_size)
    except HTTPException:
        raise PageError(400, "error.form_invalid") from None
    token = values.get(csrf.FIELD)
    binding = _binding(request, await person(request))
    key = context_of(request).account_keys.csrf
    if not csrf.valid(key, binding, token if isinstance(token, str) else None):
        await values.close()  # spooled uploads, if any
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
        language=request.scope["state"].get("keyguard_language", DEFAULT_LANGUAGE),
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


class _OneLanguagePerRequest:
    """The language :func:`person` chooses lasts as long as its request (in-process
    clients run every request in one task and context)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = i18n.begin()
        try:
            await self.app(scope, receive, send)
        finally:
            i18n.end(token)


def install(app: FastAPI) -> None:
    app.add_middleware(_OneLanguagePerRequest)

    async def on_page_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageError)
        return await render(request, "error.html", status=exc.status, message_key=exc.message_key)

    async def on_redirect(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Redirect)
        return redirect(exc.location)

    app.add_exception_handler(PageError, on_page_error)
    app.add_exception_handler(Redirect, on_redirect)
