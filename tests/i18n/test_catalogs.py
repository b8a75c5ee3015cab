"""The two message catalogs: the same keys with the same ``{fields}``, and no key that
nothing uses (CONTRACT §12: a test fails on a key missing from either catalog or a
catalog key no template uses)."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from string import Formatter

import pytest

import keyguard
from keyguard.i18n import DEFAULT_LANGUAGE, LANGUAGES, catalog

SOURCE = Path(keyguard.__file__).parent
OTHERS = [language for language in LANGUAGES if language != DEFAULT_LANGUAGE]


def fields_of(template: str) -> set[str]:
    return {name for _, name, _, _ in Formatter().parse(template) if name is not None}


@pytest.mark.parametrize("language", OTHERS)
def test_every_english_key_is_translated(language: str) -> None:
    missing = sorted(catalog(DEFAULT_LANGUAGE).keys() - catalog(language).keys())
    assert not missing, f"missing from {language}.json: {missing}"


@pytest.mark.parametrize("language", OTHERS)
def test_no_key_exists_only_in_a_translation(language: str) -> None:
    extra = sorted(catalog(language).keys() - catalog(DEFAULT_LANGUAGE).keys())
    assert not extra, f"in {language}.json but not in en.json: {extra}"


@pytest.mark.parametrize("language", OTHERS)
def test_a_translation_has_the_same_fields(language: str) -> None:
    english, other = catalog(DEFAULT_LANGUAGE), catalog(language)
    differ = {
        key: (sorted(fields_of(english[key])), sorted(fields_of(other[key])))
        for key in english.keys() & other.keys()
        if fields_of(english[key]) != fields_of(other[key])
    }
    assert not differ, f"{{fields}} differ (en, {language}): {differ}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_message_is_a_non_empty_format_string(language: str) -> None:
    for key, template in catalog(language).items():
        assert isinstance(template, str), key
        assert template.strip(), key
        # Segments may be camelCase: seed 001's keys are (help.security.totpTitle).
        assert re.fullmatch(r"[a-z0-9_]+(\.[a-z0-9_][A-Za-z0-9_]*)+", key), (
            f"not a dotted key: {key}"
        )
        fields_of(template)  # raises on a stray brace


# ---- every key is used --------------------------------------------------------------
#
# A key counts as used when the sources hold it:
#   1. as a whole string literal ("error.csrf", t('nav.sessions'), PageError(403, "…"));
#   2. as a pattern built at run time, completed by a word the sources spell somewhere:
#      - Python f-strings (f"mail.changed.{change}", f"flash.{flash}") and
#        "prefix." + name;
#      - Jinja concatenations ("roles." ~ r ~ ".may", "outbox.status." + m.status);
#      each {…} or variable part must be a word found in a string literal, e.g.
#      flash=password_changed in a redirect's URL completes f"flash.{flash}" (how flash
#      messages are passed: by name in the query string), role and status values
#      complete "roles." ~ … and "keys.status." ~ …. A hole of digits alone is accepted
#      as it is: numbers are computed (grace periods: "keys.grace." ~ g with g in
#      3600, 7 * 86400, …), not spelled.
# Nothing else is listed by hand: a key only reachable in another way fails here.

_PY_STRING = re.compile(r"""(?P<q>["'])(?P<s>(?:\\.|(?!(?P=q)).)*)(?P=q)""")
# A Jinja expression joining string literals and names with ~ or +.
_JINJA_CHAIN = re.compile(
    r"""(?:(?:"[^"\n]*"|'[^'\n]*'|[A-Za-z_][\w.\[\]'"]*)\s*[~+]\s*)+"""
    r"""(?:"[^"\n]*"|'[^'\n]*'|[A-Za-z_][\w.\[\]'"]*)"""
)
_PART = re.compile(r"""\s*("[^"\n]*"|'[^'\n]*'|[^~+]+?)\s*(?:[~+]|$)""")
_WORD = re.compile(r"[A-Za-z0-9_-]+")
_HOLE = "(?P<hole{}>[A-Za-z0-9_-]+)"


def _sources() -> list[Path]:
    return [p for p in SOURCE.rglob("*") if p.suffix in {".py", ".html", ".js"} and p.is_file()]


def _python_literals(tree: ast.AST) -> tuple[set[str], list[list[str | None]]]:
    """Whole string literals, and patterns: f-strings and "literal" + name (None marks
    a hole filled at run time)."""
    literals: set[str] = set()
    patterns: list[list[str | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            literals.add(node.value)
        elif isinstance(node, ast.JoinedStr):
            parts: list[str | None] = []
            for value in node.values:
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    parts.append(value.value)
                else:
                    parts.append(None)
            patterns.append(parts)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            sides = [node.left, node.right]
            if any(isinstance(s, ast.Constant) and isinstance(s.value, str) for s in sides):
                patterns.append(
                    [
                        s.value
                        if isinstance(s, ast.Constant) and isinstance(s.value, str)
                        else None
                        for s in sides
                    ]
                )
    return literals, patterns


def _template_literals(text: str) -> tuple[set[str], list[list[str | None]]]:
    literals = {m.group("s") for m in _PY_STRING.finditer(text)}
    patterns: list[list[str | None]] = []
    for chain in _JINJA_CHAIN.finditer(text):
        parts: list[str | None] = []
        for part in _PART.finditer(chain.group(0)):
            piece = part.group(1)
            if not piece:
                continue
            quoted = piece[:1] in "\"'" and piece[-1:] == piece[:1] and len(piece) > 1
            parts.append(piece[1:-1] if quoted else None)
        if any(isinstance(p, str) and "." in p for p in parts):
            patterns.append(parts)
    return literals, patterns


def _regex(parts: list[str | None]) -> re.Pattern[str] | None:
    if not any(isinstance(p, str) and "." in p for p in parts):
        return None  # not a key being built
    pieces = [re.escape(p) if p is not None else _HOLE.format(i) for i, p in enumerate(parts)]
    return re.compile("".join(pieces))


def used_keys(keys: set[str]) -> set[str]:
    literals: set[str] = set()
    patterns: list[list[str | None]] = []
    for path in _sources():
        text = path.read_text("utf-8")
        found = (
            _python_literals(ast.parse(text)) if path.suffix == ".py" else _template_literals(text)
        )
        literals |= found[0]
        patterns += found[1]
    words = {w for literal in literals for w in _WORD.findall(literal)}
    used = keys & literals
    regexes = [r for r in map(_regex, patterns) if r is not None]
    for key in keys - used:
        for regex in regexes:
            match = regex.fullmatch(key)
            holes = match.groupdict().values() if match else ()
            if match and all(hole in words or hole.isdigit() for hole in holes):
                used.add(key)
                break
    return used


def test_every_catalog_key_is_used_somewhere() -> None:
    keys = set(catalog(DEFAULT_LANGUAGE))
    unused = sorted(keys - used_keys(keys))
    assert not unused, f"keys no template or source uses: {unused}"


def test_the_scan_sees_how_keys_are_passed() -> None:
    """The scan itself: literal, f-string, flash by name, Jinja concatenation."""
    keys = {
        "flash.password_changed",  # redirect("…?flash=password_changed") + f"flash.{flash}"
        "roles.viewer.may",  # "roles." ~ r ~ ".may"
        "outbox.status.held",  # "outbox.status." + m.status
        "mail.changed.passkey_added",  # f"mail.changed.{change}"
        "error.csrf",  # PageError(403, "error.csrf")
    }
    assert used_keys(keys) == keys
    assert used_keys({"flash.no_such_flash_anywhere"}) == set()
