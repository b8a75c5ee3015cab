"""Dates and numbers in the page's language (Babel): the ``datetime``, ``date`` and
``number`` filters and ``t`` of the templates read the page's ``language``."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

from keyguard.web.pages import _env

WHEN = datetime(2025, 3, 5, 14, 30, 59, tzinfo=UTC)


def render(source: str, language: str, **values: object) -> str:
    return _env.from_string(source).render(language=language, **values)


def test_datetime_in_english_and_canadian_french() -> None:
    assert render("{{ when|datetime }}", "en", when=WHEN) == "Mar 5, 2025, 2:30\u202fPM\u00a0UTC"
    assert (
        render("{{ when|datetime }}", "fr", when=WHEN) == "5 mars 2025, 14\u00a0h\u00a030\u00a0UTC"
    )


def test_datetime_is_shown_in_utc_whatever_its_zone() -> None:
    montreal = WHEN.astimezone(timezone(timedelta(hours=-5)))
    assert (
        render("{{ when|datetime }}", "fr", when=montreal)
        == "5 mars 2025, 14\u00a0h\u00a030\u00a0UTC"
    )
    naive = WHEN.replace(tzinfo=None)  # stored naive in UTC
    assert (
        render("{{ when|datetime }}", "fr", when=naive) == "5 mars 2025, 14\u00a0h\u00a030\u00a0UTC"
    )
    assert render("{{ when|datetime }}", "fr", when=None) == ""


def test_date_and_number() -> None:
    assert render("{{ d|date }}", "en", d=date(2025, 12, 1)) == "Dec 1, 2025"
    assert render("{{ d|date }}", "fr", d=date(2025, 12, 1)) == "1 déc. 2025"
    assert render("{{ d|date }}", "fr", d=WHEN) == "5 mars 2025"
    assert render("{{ n|number }}", "en", n=1234567.5) == "1,234,567.5"
    assert render("{{ n|number }}", "fr", n=1234567.5) == "1\u00a0234\u00a0567,5"


def test_t_speaks_the_page_language_in_macros_too() -> None:
    source = (
        '{% macro nav() %}{{ t("nav.security") }}{% endmacro %}'
        '{{ t("nav.sessions") }}|{{ nav() }}|{{ t("login.throttled", seconds=5|number) }}'
    )
    assert (
        render(source, "fr") == "Sessions|Sécurité|Trop de tentatives. Réessayez dans 5 secondes."
    )
    assert render(source, "en") == "Sessions|Security|Too many attempts. Try again in 5 seconds."
