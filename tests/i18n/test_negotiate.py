"""Choosing the page language from ``Accept-Language`` (RFC 9110 §12.5.4), and
``translate`` speaking the language the request chose."""

from __future__ import annotations

import pytest

from keyguard import i18n
from keyguard.i18n import negotiate, translate


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "en"),
        ("", "en"),
        ("fr", "fr"),
        ("fr-CA", "fr"),
        ("FR-ca", "fr"),
        ("fr-CA,fr;q=0.9,en-CA;q=0.8,en;q=0.7", "fr"),
        ("en-US,en;q=0.9,fr;q=0.8", "en"),
        ("fr;q=0.8, en;q=0.5", "fr"),
        ("en;q=0.5, fr;q=0.8", "fr"),  # the q-value decides, not the order
        ("de-DE, fr;q=0.4", "fr"),  # the first language we have
        ("de-DE, es;q=0.9", "en"),  # none we have
        ("*", "en"),
        ("de, *;q=0.5", "en"),  # anything: the default
        ("*;q=0.5, fr;q=0.6", "fr"),
        ("fr;q=0", "en"),  # q=0 means "not this one"
        ("fr;q=0, *", "en"),
        ("fr;q=0.000, en;q=0.001", "en"),
        ("fr;q=1.000", "fr"),
        ("en, fr", "en"),  # ties keep the header's order
        ("fr, en", "fr"),
        # malformed ranges are skipped, never guessed at
        ("fr;q=abc", "en"),
        ("fr;q=1.5", "en"),
        ("fr;q=0.1234", "en"),
        ("fr;q=-1", "en"),
        ("fr;q=", "en"),  # an empty weight is malformed too
        (";q=0.9, fr", "fr"),
        ("fr_CA", "en"),  # an underscore is not a language tag
        ("fr-CA-x-toolongsubtag", "en"),
        ("french", "en"),
        (",,, ;;;, fr;q=0.3", "fr"),
        ("fr;q=0.5;level=1", "fr"),
        ("en;q=0.1, fr;Q=0.2", "fr"),  # parameter names are case-insensitive
        ("fr" + ",x" * 2000, "en"),  # an absurd header: the default
        ("\u00e9\u00e9, fr", "fr"),
    ],
)
def test_negotiate(header: str | None, expected: str) -> None:
    assert negotiate(header) == expected


def test_translate_speaks_the_language_in_use() -> None:
    token = i18n.begin()
    try:
        assert translate("nav.security") == "Security"
        assert i18n.use("fr") == "fr"
        assert translate("nav.security") == "Sécurité"
        assert (
            translate("login.throttled", seconds=3)
            == "Trop de tentatives. Réessayez dans 3 secondes."
        )
        assert translate("nav.security", "en") == "Security"  # an explicit language wins
        assert i18n.use("de") == "en"  # not one of ours: English
        assert translate("nav.security") == "Security"
    finally:
        i18n.end(token)
    assert i18n.current() == "en"


def test_a_key_missing_from_english_is_an_error() -> None:
    with pytest.raises(KeyError):
        translate("no.such.key", "fr")
