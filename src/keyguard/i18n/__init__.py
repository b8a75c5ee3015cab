"""Message catalogs: every string a person reads (pages, emails) comes from here.

One JSON file per language (``en.json``; ``fr.json`` comes with the dashboard), flat, with
dotted keys (``account.security.title``, ``help.common.tip``). Values are ``str.format``
templates with named fields. A key missing from a language falls back to English; a key
missing from English is a bug and raises ``KeyError`` (tests render every page).
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

DEFAULT_LANGUAGE = "en"
LANGUAGES = ("en",)


@cache
def catalog(language: str) -> dict[str, str]:
    resource = files("keyguard.i18n").joinpath(f"{language}.json")
    loaded: dict[str, str] = json.loads(resource.read_text("utf-8"))
    return loaded


def translate(key: str, language: str = DEFAULT_LANGUAGE, /, **fields: Any) -> str:
    messages = catalog(language if language in LANGUAGES else DEFAULT_LANGUAGE)
    template = messages.get(key)
    if template is None:
        template = catalog(DEFAULT_LANGUAGE)[key]
    return template.format_map(fields) if fields else template


def has(key: str) -> bool:
    return key in catalog(DEFAULT_LANGUAGE)
