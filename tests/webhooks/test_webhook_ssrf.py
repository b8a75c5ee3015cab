"""SSRF guard: which addresses and URLs are refused, and why."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyguard.webhooks.ssrf import (
    ResolutionFailed,
    UnsafeWebhookUrl,
    classify_address,
    resolve_safe,
    validate_webhook_url,
)

LOOPBACK = [ipaddress.ip_network("127.0.0.0/8")]


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        # loopback, both families and both edges
        ("127.0.0.0", "loopback"),
        ("127.0.0.1", "loopback"),
        ("127.255.255.255", "loopback"),
        ("::1", "loopback"),
        # RFC 1918 edges and the addresses just outside them
        ("10.0.0.0", "private"),
        ("10.255.255.255", "private"),
        ("172.16.0.0", "private"),
        ("172.31.255.255", "private"),
        ("192.168.0.1", "private"),
        ("192.168.255.255", "private"),
        ("fc00::1", "private"),
        ("fdff:ffff::1", "private"),
        ("fec0::1", "private"),
        ("64:ff9b:1::1", "private"),
        # link-local and metadata
        ("169.254.0.1", "link_local"),
        ("169.254.255.255", "link_local"),
        ("fe80::1", "link_local"),
        ("febf::1", "link_local"),
        ("169.254.169.254", "metadata"),
        ("169.254.170.2", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("100.100.100.200", "metadata"),
        ("168.63.129.16", "metadata"),
        # CGNAT
        ("100.64.0.0", "cgnat"),
        ("100.127.255.255", "cgnat"),
        # multicast, broadcast, reserved
        ("224.0.0.1", "multicast"),
        ("239.255.255.255", "multicast"),
        ("ff02::1", "multicast"),
        ("255.255.255.255", "broadcast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.254", "reserved"),
        ("192.0.0.8", "reserved"),
        ("0.1.2.3", "reserved"),
        ("100::1", "reserved"),
        # documentation and benchmarking
        ("192.0.2.1", "documentation"),
        ("198.51.100.7", "documentation"),
        ("203.0.113.255", "documentation"),
        ("2001:db8::1", "documentation"),
        ("3fff::1", "documentation"),
        ("198.18.0.0", "benchmarking"),
        ("198.19.255.255", "benchmarking"),
        ("2001:2::1", "benchmarking"),
        # unspecified
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        # IPv6 forms that embed an IPv4 destination
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:7f00:1", "loopback"),
        ("::ffff:169.254.169.254", "metadata"),
        ("::ffff:10.1.2.3", "private"),
        ("::127.0.0.1", "loopback"),  # deprecated IPv4-compatible
        ("64:ff9b::7f00:1", "loopback"),  # NAT64
        ("64:ff9b::a9fe:a9fe", "metadata"),  # NAT64 of 169.254.169.254
        ("2002:7f00:1::1", "loopback"),  # 6to4 of 127.0.0.1
        ("2002:a00:1::", "private"),  # 6to4 of 10.0.0.1
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback"),  # Teredo client 127.0.0.1
        ("2001:0:a00:1:8000:63bf:3fff:fdd2", "private"),  # Teredo server 10.0.0.1
        # relayed forms carrying 0.0.0.0/8 name their own range, not "unspecified"
        ("2001::1", "teredo"),
        ("2002::1", "6to4"),
        ("64:ff9b::1", "nat64"),
        ("::ffff:0.0.0.0", "unspecified"),  # mapped: really 0.0.0.0
    ],
)
def test_forbidden_address_is_classified(address: str, reason: str) -> None:
    assert classify_address(address) == reason


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "9.255.255.255",  # just below 10/8
        "11.0.0.0",  # just above 10/8
        "172.15.255.255",
        "172.32.0.0",
        "100.63.255.255",
        "100.128.0.0",
        "169.253.255.255",
        "198.17.255.255",
        "198.20.0.0",
        "223.255.255.255",
        "2606:4700:4700::1111",
        "2001:4860:4860::8888",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",  # NAT64 of 8.8.8.8
        "2002:808:808::1",  # 6to4 of 8.8.8.8
    ],
)
def test_public_address_is_allowed(address: str) -> None:
    assert classify_address(address) is None


def test_allow_private_lets_listed_networks_through() -> None:
    allow = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("fd12::/16")]
    assert classify_address("127.0.0.1", allow) is None
    assert classify_address("::ffff:127.0.0.1", allow) is None
    assert classify_address("fd12::5", allow) is None
    assert classify_address("10.0.0.1", allow) == "private"
    assert classify_address("::1", allow) == "loopback"


def test_metadata_stays_forbidden_inside_allow_private() -> None:
    allow = [ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fd00::/8")]
    assert classify_address("169.254.1.1", allow) is None
    assert classify_address("169.254.169.254", allow) == "metadata"
    assert classify_address("fd00:ec2::254", allow) == "metadata"


@given(st.integers(0, 2**24 - 1))
def test_every_address_in_10_slash_8_is_private(offset: int) -> None:
    assert classify_address(ipaddress.IPv4Address(0x0A000000 + offset)) == "private"


@given(st.integers(0, 2**32 - 1))
def test_mapped_ipv6_is_judged_like_its_ipv4(n: int) -> None:
    v4 = ipaddress.IPv4Address(n)
    assert classify_address(ipaddress.IPv6Address(f"::ffff:{v4}")) == classify_address(v4)


# ---- URL validation at registration ------------------------------------------------


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("not a url", "invalid_url"),
        ("", "invalid_url"),
        ("https://", "invalid_url"),
        ("https:///path", "invalid_url"),
        ("ftp://example.com/", "invalid_url"),
        ("javascript:alert(1)", "invalid_url"),
        ("//example.com/", "invalid_url"),
        ("https://user:pw@example.com/", "invalid_url"),
        ("https://user@example.com/", "invalid_url"),
        ("https://@example.com/", "invalid_url"),
        ("https://evil.com\\@good.com/", "invalid_url"),
        ("https://exa mple.com/", "invalid_url"),
        ("https://example.com/\r\nX: y", "invalid_url"),
        ("https://ex%41mple.com/", "invalid_url"),
        ("https://example.com:0/", "invalid_url"),
        ("https://example.com:65536/", "invalid_url"),
        ("https://-bad-.example.com/", "invalid_url"),
        ("https://[fe80::1%25eth0]/", "invalid_url"),
        ("https://example.com/" + "a" * 2100, "invalid_url"),
        # non-canonical IPv4 literals: parsers disagree on them, so they are refused
        ("http://2130706433/", "invalid_url"),
        ("https://2130706433/", "invalid_url"),
        ("https://0x7f.1/", "invalid_url"),
        ("https://0x7f000001/", "invalid_url"),
        ("https://127.1/", "invalid_url"),
        ("https://0177.0.0.1/", "invalid_url"),
        ("https://127.0.0.01/", "invalid_url"),
        ("https://017700000001/", "invalid_url"),
        ("https://1.2.3.4.5/", "invalid_url"),
        ("https://256.0.0.1/", "invalid_url"),
        ("https://example.123/", "invalid_url"),
        # IP literals in forbidden ranges
        ("https://127.0.0.1/", "ssrf_blocked"),
        ("https://127.0.0.1./", "ssrf_blocked"),
        ("https://[::1]/", "ssrf_blocked"),
        ("https://[::ffff:127.0.0.1]/", "ssrf_blocked"),
        ("https://[::ffff:169.254.169.254]/", "ssrf_blocked"),
        ("https://169.254.169.254/latest/meta-data/", "ssrf_blocked"),
        ("https://10.0.0.1/", "ssrf_blocked"),
        ("https://0.0.0.0/", "ssrf_blocked"),
        ("https://[::]/", "ssrf_blocked"),
        ("https://100.64.0.1/", "ssrf_blocked"),
        # plain http without an allow list
        ("http://example.com/", "https_required"),
        ("http://8.8.8.8/", "https_required"),
    ],
)
def test_unsafe_url_is_refused_at_registration(url: str, code: str) -> None:
    with pytest.raises(UnsafeWebhookUrl) as info:
        validate_webhook_url(url, allow_private=[])
    assert info.value.code == code
    assert isinstance(info.value, ValueError)


def test_well_formed_https_url_is_normalized() -> None:
    parsed = validate_webhook_url("HTTPS://Hooks.Example.COM.:443/in?x=1#frag", allow_private=[])
    assert parsed.url == "https://hooks.example.com/in?x=1"
    assert (parsed.scheme, parsed.host, parsed.port, parsed.target) == (
        "https",
        "hooks.example.com",
        443,
        "/in?x=1",
    )
    assert parsed.ip is None
    assert parsed.host_header == "hooks.example.com"


def test_idn_host_is_idna_encoded() -> None:
    parsed = validate_webhook_url("https://bücher.example/hook", allow_private=[])
    assert parsed.host == "xn--bcher-kva.example"


def test_unresolvable_host_is_accepted_at_registration() -> None:
    parsed = validate_webhook_url("https://not-yet-created.invalid/x", allow_private=[])
    assert parsed.host == "not-yet-created.invalid"


def test_public_ip_literal_is_accepted() -> None:
    parsed = validate_webhook_url("https://[2606:4700::1]:8443/x", allow_private=[])
    assert parsed.ip == ipaddress.ip_address("2606:4700::1")
    assert parsed.host_header == "[2606:4700::1]:8443"


def test_allow_private_permits_plain_http_to_a_listed_ip() -> None:
    parsed = validate_webhook_url("http://127.0.0.1:8000/hook", allow_private=LOOPBACK)
    assert parsed.ip == ipaddress.ip_address("127.0.0.1")


def test_allow_private_permits_plain_http_to_a_host_name_checked_later() -> None:
    assert validate_webhook_url("http://localhost:8000/", allow_private=LOOPBACK).port == 8000


def test_plain_http_to_an_ip_outside_allow_private_is_refused() -> None:
    with pytest.raises(UnsafeWebhookUrl) as info:
        validate_webhook_url("http://8.8.8.8/", allow_private=LOOPBACK)
    assert info.value.code == "https_required"


# ---- resolution at send time ----------------------------------------------------------


def resolver_for(*answers: str, calls: list[str] | None = None):
    async def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        return list(answers)

    return resolve


async def test_host_name_resolving_to_loopback_is_refused() -> None:
    with pytest.raises(UnsafeWebhookUrl) as info:
        await resolve_safe("evil.example", 443, [], resolver_for("127.0.0.1"))
    assert info.value.code == "ssrf_blocked"
    assert "127.0.0.1" not in str(info.value)


async def test_one_forbidden_answer_among_public_ones_is_refused() -> None:
    with pytest.raises(UnsafeWebhookUrl):
        await resolve_safe("mixed.example", 443, [], resolver_for("8.8.8.8", "169.254.169.254"))


@pytest.mark.parametrize("answer", ["::ffff:127.0.0.1", "fe80::1%eth0", "0.0.0.0", "10.9.8.7"])
async def test_forbidden_resolved_forms_are_refused(answer: str) -> None:
    with pytest.raises(UnsafeWebhookUrl):
        await resolve_safe("evil.example", 443, [], resolver_for(answer))


async def test_public_answers_are_returned_deduplicated_in_order() -> None:
    result = await resolve_safe(
        "ok.example", 443, [], resolver_for("8.8.8.8", "2001:4860::1", "8.8.8.8")
    )
    assert result == [ipaddress.ip_address("8.8.8.8"), ipaddress.ip_address("2001:4860::1")]


async def test_allow_private_lets_a_loopback_answer_through() -> None:
    result = await resolve_safe("dev.local", 80, LOOPBACK, resolver_for("127.0.0.1"))
    assert result == [ipaddress.ip_address("127.0.0.1")]


async def test_ip_literal_host_skips_the_resolver() -> None:
    calls: list[str] = []
    result = await resolve_safe("8.8.8.8", 443, [], resolver_for("127.0.0.1", calls=calls))
    assert result == [ipaddress.ip_address("8.8.8.8")]
    assert calls == []


async def test_empty_answer_is_a_resolution_failure() -> None:
    with pytest.raises(ResolutionFailed):
        await resolve_safe("empty.example", 443, [], resolver_for())


async def test_system_resolver_resolves_and_refuses_localhost() -> None:
    # Real getaddrinfo: "localhost" answers from /etc/hosts without network access.
    with pytest.raises(UnsafeWebhookUrl):
        await resolve_safe("localhost", 443, [])


@pytest.mark.parametrize("host", ["2130706433", "0x7f.1", "127.1", "0177.0.0.1"])
async def test_legacy_ipv4_forms_resolve_to_loopback_and_are_refused(host: str) -> None:
    # Even if such a host slipped past registration, getaddrinfo's inet_aton reading
    # lands on 127.0.0.1, which the send-time check refuses.
    with pytest.raises((UnsafeWebhookUrl, ResolutionFailed)) as info:
        await resolve_safe(host, 443, [])
    assert getattr(info.value, "code", None) in {"ssrf_blocked", "dns_failed"}


@pytest.mark.parametrize(
    "url", ["https://localhost/h", "https://LOCALHOST./h", "https://api.localhost/h"]
)
def test_localhost_names_are_refused_at_registration(url):
    with pytest.raises(UnsafeWebhookUrl) as refused:
        validate_webhook_url(url, [])
    assert refused.value.code == "ssrf_blocked"


def test_localhost_names_are_fine_when_loopback_is_allowed_for_development():
    import ipaddress

    assert validate_webhook_url("http://localhost:9000/h", [ipaddress.ip_network("127.0.0.0/8")])
