from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyguard.engine.origins import DomainAllowlist, normalize_domain_pattern
from keyguard.errors import OriginNotAllowed

# ---- normalize_domain_pattern ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("example.com", "example.com"),
        ("Example.COM.", "example.com"),
        ("  example.com  ", "example.com"),
        ("*.Example.com", "*.example.com"),
        ("https://App.Example.com/", "https://app.example.com"),
        ("HTTPS://app.example.com:443", "https://app.example.com"),
        ("http://app.example.com:80", "http://app.example.com"),
        ("https://app.example.com:8443", "https://app.example.com:8443"),
        ("example.com:443", "example.com:443"),
        ("localhost:*", "localhost:*"),
        ("http://localhost:*", "http://localhost:*"),
        ("*.localhost", "*.localhost"),
        ("*.Bücher.de", "*.xn--bcher-kva.de"),
        ("bücher.de", "xn--bcher-kva.de"),
        ("127.0.0.1:3000", "127.0.0.1:3000"),
        ("[::1]:3000", "[::1]:3000"),
        ("http://[0:0::1]", "http://[::1]"),
        ("chrome-extension://abcdefgh", "chrome-extension://abcdefgh"),
        ("under_score.example.com", "under_score.example.com"),
    ],
)
def test_patterns_normalise(text: str, expected: str) -> None:
    assert normalize_domain_pattern(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "*",
        "*.com",
        "*example.com",
        "foo.*.example.com",
        "*.*.example.com",
        "ex ample.com",
        "example.com/path",
        "https://example.com/app",
        "example.com?x=1",
        "user@example.com",
        "https://user:pw@example.com",
        "example.com:0",
        "example.com:65536",
        "example.com:port",
        "-bad.example.com",
        "exa\u0000mple.com",
        "*.127.0.0.1",
        "*.[::1]",
        "1.2.3.999",
        "[fe80::1%eth0]",
        "1http://example.com",
        "a" * 64 + ".com",
        "example..com",
    ],
)
def test_bad_patterns_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="invalid domain pattern"):
        normalize_domain_pattern(text)


# ---- matching --------------------------------------------------------------------------


def test_empty_list_allows_every_origin_and_none() -> None:
    allow = DomainAllowlist([])
    assert allow.allows_origin("https://evil.example", None)
    assert allow.allows_origin(None, None)
    assert allow.allows_origin("null", None)


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://a.example.com", True),
        ("https://a.b.c.example.com", True),  # any depth
        ("http://a.example.com", True),
        ("https://example.com", False),  # the apex is listed on its own
        ("https://evilexample.com", False),
        ("https://a.evilexample.com", False),
        ("https://example.com.evil.com", False),
        ("https://a.example.com.evil.com", False),
        ("https://A.EXAMPLE.COM", True),
        ("https://a.example.com.", True),
        ("https://a.example.com:8443", False),  # default ports only
        ("ftp://a.example.com", False),
        ("https://xexample.com", False),
        ("https://.example.com", False),
    ],
)
def test_wildcard_matches_subdomains_only(origin: str, allowed: bool) -> None:
    assert DomainAllowlist(["*.example.com"]).allows_origin(origin, None) is allowed


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://example.com", True),
        ("http://example.com", True),
        ("https://example.com:443", True),
        ("http://example.com:80", True),
        ("http://example.com:443", False),  # not http's default port
        ("https://www.example.com", False),
        ("https://EXAMPLE.com", True),
        ("https://example.com.", True),
    ],
)
def test_exact_host_matches_only_itself(origin: str, allowed: bool) -> None:
    assert DomainAllowlist(["example.com"]).allows_origin(origin, None) is allowed


def test_apex_and_wildcard_together_cover_both() -> None:
    allow = DomainAllowlist(["example.com", "*.example.com"])
    assert allow.allows_origin("https://example.com", None)
    assert allow.allows_origin("https://www.example.com", None)


def test_scheme_in_pattern_pins_the_scheme() -> None:
    allow = DomainAllowlist(["https://app.example.com"])
    assert allow.allows_origin("https://app.example.com", None)
    assert not allow.allows_origin("http://app.example.com", None)


def test_port_in_pattern_pins_the_port() -> None:
    allow = DomainAllowlist(["example.com:8443"])
    assert allow.allows_origin("https://example.com:8443", None)
    assert allow.allows_origin("http://example.com:8443", None)
    assert not allow.allows_origin("https://example.com", None)


def test_any_port_pattern_for_local_development() -> None:
    allow = DomainAllowlist(["http://localhost:*"])
    assert allow.allows_origin("http://localhost:3000", None)
    assert allow.allows_origin("http://localhost", None)
    assert not allow.allows_origin("https://localhost:3000", None)
    assert not allow.allows_origin("http://localhost.evil.com:3000", None)


def test_non_web_scheme_needs_an_explicit_pattern() -> None:
    assert not DomainAllowlist(["abcdefgh"]).allows_origin("chrome-extension://abcdefgh", None)
    allow = DomainAllowlist(["chrome-extension://abcdefgh"])
    assert allow.allows_origin("chrome-extension://abcdefgh", None)


def test_ip_literal_origins() -> None:
    allow = DomainAllowlist(["127.0.0.1:3000", "http://[::1]:3000"])
    assert allow.allows_origin("http://127.0.0.1:3000", None)
    assert allow.allows_origin("http://[::1]:3000", None)
    assert allow.allows_origin("http://[0:0::1]:3000", None)
    assert not allow.allows_origin("http://127.0.0.2:3000", None)


def test_idn_origin_is_compared_in_punycode() -> None:
    allow = DomainAllowlist(["*.bücher.de"])
    assert allow.allows_origin("https://shop.xn--bcher-kva.de", None)
    assert allow.allows_origin("https://SHOP.XN--BCHER-KVA.DE", None)
    assert not allow.allows_origin("https://shop.bucher.de", None)


def test_non_ascii_origin_is_refused_because_browsers_send_punycode() -> None:
    # RFC 6454 §6.2: the ASCII serialisation; raw UTF-8 would arrive latin-1 decoded.
    assert not DomainAllowlist(["*.bücher.de"]).allows_origin("https://shop.bücher.de", None)


@pytest.mark.parametrize("origin", [None, "null", "", "not a url", "https://", "https:/x"])
def test_missing_null_or_garbage_origin_is_refused_when_list_is_set(origin: str | None) -> None:
    assert not DomainAllowlist(["example.com"]).allows_origin(origin, None)


@pytest.mark.parametrize(
    "origin",
    [
        "https://example.com/",  # browsers never send a path in Origin
        "https://user@example.com",
        "https://example.com https://evil.com",
        "https://example.com:99999",
        "https://example.com:",
        "https://example.com\\@evil.com",
    ],
)
def test_malformed_origin_is_refused(origin: str) -> None:
    assert not DomainAllowlist(["example.com"]).allows_origin(origin, None)


def test_referer_is_used_when_origin_is_absent() -> None:
    allow = DomainAllowlist(["*.example.com"])
    assert allow.allows_origin(None, "https://www.example.com/page?q=1#top")
    assert allow.allows_origin(None, "https://www.example.com")
    assert not allow.allows_origin(None, "https://evil.com/?r=https://www.example.com/")
    assert not allow.allows_origin(None, "https://evil.com#.example.com")


@pytest.mark.parametrize(
    "referer",
    [
        "https://www.example.com@evil.com/",
        "https://www.example.com:443@evil.com/",
        "https://user:pw@www.example.com/",  # browsers strip user-info: forged
        "https://evil.com\\@www.example.com/",
    ],
)
def test_user_info_tricks_in_referer_are_refused(referer: str) -> None:
    assert not DomainAllowlist(["*.example.com"]).allows_origin(None, referer)


def test_present_origin_decides_even_if_referer_would_pass() -> None:
    allow = DomainAllowlist(["example.com"])
    assert not allow.allows_origin("null", "https://example.com/")
    assert not allow.allows_origin("https://evil.com", "https://example.com/")


def test_check_raises_origin_not_allowed() -> None:
    allow = DomainAllowlist(["example.com"])
    allow.check("https://example.com", None)
    with pytest.raises(OriginNotAllowed):
        allow.check("https://evil.com", None)


def test_entries_are_normalised_and_deduplicated() -> None:
    allow = DomainAllowlist(["Example.com", "example.com.", "*.EXAMPLE.com"])
    assert allow.entries == ("example.com", "*.example.com")
    assert "example.com" in repr(allow)


def test_invalid_pattern_refused_at_build_time() -> None:
    with pytest.raises(ValueError, match=r"invalid domain pattern '\*'"):
        DomainAllowlist(["example.com", "*"])


def test_ten_thousand_patterns_look_up_fast() -> None:
    allow = DomainAllowlist([f"*.tenant{i}.example.com" for i in range(10_000)])
    start = time.perf_counter()
    for i in range(10_000):
        assert allow.allows_origin(f"https://app.tenant{i}.example.com", None)
    assert not allow.allows_origin("https://app.tenant10000.example.com", None)
    assert time.perf_counter() - start < 2.0


# ---- properties ------------------------------------------------------------------------

labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
tlds = st.from_regex(r"[a-z][a-z0-9-]{0,6}[a-z]", fullmatch=True)  # never numeric
hosts = st.builds(lambda head, tld: ".".join([*head, tld]), st.lists(labels, max_size=4), tlds)
suffixes = st.builds(
    lambda head, tld: ".".join([*head, tld]), st.lists(labels, min_size=1, max_size=2), tlds
)


@given(suffix=suffixes, host=hosts)
def test_wildcard_never_matches_a_host_outside_its_suffix(suffix: str, host: str) -> None:
    allowed = DomainAllowlist([f"*.{suffix}"]).allows_origin(f"https://{host}", None)
    assert allowed is host.endswith("." + suffix)


@given(suffix=suffixes, sub=hosts)
def test_wildcard_matches_every_subdomain(suffix: str, sub: str) -> None:
    allow = DomainAllowlist([f"*.{suffix}"])
    assert allow.allows_origin(f"https://{sub}.{suffix}", None)
    assert allow.allows_origin(f"http://{sub.upper()}.{suffix}.", None)
    assert not allow.allows_origin(f"https://{suffix}", None)
    assert not allow.allows_origin(f"https://{sub}{suffix}", None)
    assert not allow.allows_origin(f"https://{sub}.{suffix}.evil.com", None)


@given(pattern=hosts, host=hosts)
def test_exact_pattern_matches_only_the_same_host(pattern: str, host: str) -> None:
    allowed = DomainAllowlist([pattern]).allows_origin(f"https://{host}", None)
    assert allowed is (pattern == host)


def test_remembered_answers_stay_right_and_bounded() -> None:
    rules = DomainAllowlist(["*.example.com"])
    # Many distinct origins, each asked twice: every answer is the uncached one.
    for i in range(100):
        good, bad = f"https://a{i}.example.com", f"https://a{i}.example.org"
        for _ in range(2):
            assert rules.allows_origin(good, None)
            assert not rules.allows_origin(bad, None)
    assert len(rules._decided) <= DomainAllowlist._DECIDED_KEPT
    # A Referer is never remembered (it changes with every page).
    assert rules.allows_origin(None, "https://x.example.com/page?q=1")
    assert not rules.allows_origin(None, "https://x.example.org/")
