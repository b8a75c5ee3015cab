"""An email address is one plain address, kept in one canonical form: what is stored is
what mail is delivered to."""

from __future__ import annotations

import pytest

from keyguard.accounts.service import check_email
from keyguard.errors import ValidationFailed


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("Ops@Example.COM", "ops@example.com"),
        ("  first.last+tag@example.co.uk ", "first.last+tag@example.co.uk"),
        ("o'brien@example.ie", "o'brien@example.ie"),
        ("user@bücher.example", "user@xn--bcher-kva.example"),
    ],
)
def test_plain_addresses_are_kept_in_one_form(typed, kept):
    assert check_email(typed) == kept


@pytest.mark.parametrize(
    "typed",
    [
        "a@b.c,evil@example.org",  # a list: mail would go to both
        "a@b.c;evil@example.org",
        "(comment)a@example.org",  # a comment: delivered to a@example.org, stored otherwise
        "=?utf-8?q?x?=@example.org",  # an encoded word
        '"quoted"@example.org',
        "<a@example.org>",
        "a@[example.org",
        "a@[127.0.0.1]",
        "a..b@example.org",
        ".a@example.org",
        "a@example",
        "a@-example.org",
        "a@exa mple.org",
        "a@",
        "@example.org",
        "a" * 65 + "@example.org",
        "a@" + "b" * 64 + ".org",
        "",
    ],
)
def test_anything_else_is_refused(typed):
    with pytest.raises(ValidationFailed):
        check_email(typed)
