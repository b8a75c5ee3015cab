"""Message catalogs: every string a person reads (pages, emails) comes from here.

One JSON file per language (``en.json``, ``fr.json``), flat, with dotted keys
(``account.security.title``, ``help.common.tip``). Values are ``str.format`` templates
with named fields. A key missing from a language falls back to English; a key missing
from English is a bug and raises ``KeyError`` (tests render every page, and
``tests/i18n`` checks that both catalogs hold the same keys with the same fields).

Which language: the page code decides once per request (the signed-in person's setting,
else the browser's ``Accept-Language`` through :func:`negotiate`) and sets it with
:func:`use`; :func:`translate` without a language then speaks it, so a service's
refusal shown on a page reads in the page's language. Outside a page (the API, the
background jobs) nothing is set and everything is English.
"""

from __future__ import annotations

import json
import re
from contextvars import ContextVar, Token
from functools import cache
from importlib.resources import files
from typing import Any

DEFAULT_LANGUAGE = "en"
LANGUAGES = ("en", "fr")
# The Babel locale of each language: dates and numbers (Apertur is Canadian).
LOCALES = {"en": "en", "fr": "fr_CA"}

_current: ContextVar[str] = ContextVar("keyguard_language", default=DEFAULT_LANGUAGE)

_MAX_HEADER = 1000  # a longer Accept-Language is not a browser's: English
_MAX_RANGES = 30
_QVALUE = re.compile(r"0(\.[0-9]{0,3})?|1(\.0{0,3})?")  # RFC 9110 §12.4.2


@cache
def catalog(language: str) -> dict[str, str]:
    resource = files("keyguard.i18n").joinpath(f"{language}.json")
    loaded: dict[str, str] = json.loads(resource.read_text("utf-8"))
    return loaded


def current() -> str:
    """The language of the page being rendered (English outside a page)."""
    return _current.get()


def begin() -> Token[str]:
    """Start a request in English (:func:`use` may change it); hand the token to
    :func:`end` when the request is over, so no language outlives its request."""
    return _current.set(DEFAULT_LANGUAGE)


def end(token: Token[str]) -> None:
    _current.reset(token)


def use(language: str | None) -> str:
    """Speak ``language`` (one of :data:`LANGUAGES`, else English) for the rest of this
    request; returns the language chosen."""
    chosen = language if language in LANGUAGES else DEFAULT_LANGUAGE
    _current.set(chosen)
    return chosen


def translate(key: str, language: str | None = None, /, **fields: Any) -> str:
    """The message ``key`` in ``language`` (the current one when None)."""
    chosen = _current.get() if language is None else language
    messages = catalog(chosen if chosen in LANGUAGES else DEFAULT_LANGUAGE)
    template = messages.get(key)
    if template is None:
        template = catalog(DEFAULT_LANGUAGE)[key]
    return template.format_map(fields) if fields else template


def has(key: str) -> bool:
    return key in catalog(DEFAULT_LANGUAGE)


def _quality(text: str) -> float | None:
    """An RFC 9110 ``qvalue`` (0 to 1, at most three decimals), or None if malformed."""
    return float(text) if _QVALUE.fullmatch(text) else None


def negotiate(accept_language: str | None) -> str:
    """The best of :data:`LANGUAGES` for an ``Accept-Language`` header (RFC 9110 §12.5.4,
    basic filtering of RFC 4647): ``fr-CA``, ``fr;q=0.8, en;q=0.5``, ``*``. A range that
    cannot be read is skipped; nothing usable means English. Ties keep the header's order."""
    if not accept_language or len(accept_language) > _MAX_HEADER:
        return DEFAULT_LANGUAGE
    best, best_q = DEFAULT_LANGUAGE, 0.0
    for item in accept_language.split(",")[:_MAX_RANGES]:
        tag, *params = (part.strip() for part in item.split(";"))
        tag = tag.lower()
        if not tag:
            continue
        q: float | None = 1.0
        for param in params:
            name, eq, value = param.partition("=")
            if name.strip().lower() == "q" and eq:
                q = _quality(value.strip())
        if q is None or q <= 0:
            continue
        primary = tag.split("-", 1)[0]
        if tag == "*":
            language = DEFAULT_LANGUAGE
        elif primary in LANGUAGES and all(
            sub.isalnum() and len(sub) <= 8 for sub in tag.split("-")
        ):
            language = primary
        else:
            continue
        if q > best_q:
            best, best_q = language, q
    return best
