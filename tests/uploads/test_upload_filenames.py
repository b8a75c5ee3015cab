"""Client file names are reduced to a harmless display name."""

from __future__ import annotations

import pytest

from keyguard.uploads.filenames import FALLBACK, MAX_NAME_BYTES, display_name


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("holiday.jpg", "holiday.jpg"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\win.ini", "win.ini"),
        ("C:\\Users\\me\\Pictures\\cat.png", "cat.png"),
        ("/absolute/path/x.gif", "x.gif"),
        ("..", FALLBACK),
        ("", FALLBACK),
        (None, FALLBACK),
        ("a\x00b\r\n.jpg", "ab.jpg"),
        ("evil\u202egnp.exe", "evilgnp.exe"),  # bidi override removed
        ("  spaced  .png ", "spaced  .png"),
        ("e\u0301t\u00e9.jpg", "\u00e9t\u00e9.jpg"),  # NFC
    ],
)
def test_display_names_are_base_names_without_tricks(raw: str | None, shown: str) -> None:
    assert display_name(raw) == shown


def test_long_names_are_cut_on_a_character_boundary() -> None:
    name = display_name("é" * 500)
    assert len(name.encode()) <= MAX_NAME_BYTES
    assert set(name) == {"é"}
