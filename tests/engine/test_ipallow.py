from __future__ import annotations

import ipaddress
import random
import time
from ipaddress import IPv4Address, IPv6Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyguard.engine.ipallow import (
    IpAllowlist,
    TrustedProxies,
    parse_address,
    parse_network,
    resolve_client_ip,
)
from keyguard.errors import IpNotAllowed

# ---- parse_network ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.0.2.7", "192.0.2.7/32"),
        ("10.1.2.3/8", "10.0.0.0/8"),  # host bits set: normalised, not refused
        ("2001:DB8::1", "2001:db8::1/128"),
        ("2001:db8::1/32", "2001:db8::/32"),
        ("::ffff:10.0.0.0/104", "::ffff:a00:0/104"),
        ("0.0.0.0/0", "0.0.0.0/0"),
    ],
)
def test_parse_network_accepts_addresses_and_cidrs(text: str, expected: str) -> None:
    assert str(parse_network(text)) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        " 10.0.0.1",
        "10.0.0.1 ",
        "10.0.0.0 /8",
        "fe80::1%eth0",
        "fe80::1%eth0/64",
        "10.0.0.1\n",
        "10.0.0.1\x00",
        "10.0.0.256",
        "10.0.0.0/33",
        "010.0.0.1",  # leading zeros are ambiguous (octal in some parsers)
        "example.com",
        "\uff11\uff10.0.0.1",  # full-width digits
        "10.0.0.0/-1",
        "*",
    ],
)
def test_parse_network_refuses_garbage(text: str) -> None:
    with pytest.raises(ValueError, match="not an IP address"):
        parse_network(text)


def test_parse_network_error_does_not_echo_huge_input() -> None:
    with pytest.raises(ValueError, match="not an IP address") as info:
        parse_network("x" * 10_000)
    assert len(str(info.value)) < 200


# ---- IpAllowlist -----------------------------------------------------------------------


def test_empty_allowlist_allows_everything_even_unknown_addresses() -> None:
    allow = IpAllowlist([])
    assert allow.allows("203.0.113.9")
    assert allow.allows("2001:db8::1")
    assert allow.allows(None)
    assert not allow


@pytest.mark.parametrize(
    ("ip", "allowed"),
    [
        ("192.168.10.0", True),  # first address of the range
        ("192.168.10.255", True),  # last address of the range
        ("192.168.9.255", False),  # one before
        ("192.168.11.0", False),  # one past
        ("203.0.113.7", True),
        ("203.0.113.8", False),
        ("203.0.113.6", False),
    ],
)
def test_cidr_edges_are_exact(ip: str, allowed: bool) -> None:
    allow = IpAllowlist(["192.168.10.0/24", "203.0.113.7"])
    assert allow.allows(ip) is allowed


def test_ipv6_ranges_match_and_their_edges_are_exact() -> None:
    allow = IpAllowlist(["2001:db8:1::/48"])
    assert allow.allows("2001:db8:1::")
    assert allow.allows("2001:db8:1:ffff:ffff:ffff:ffff:ffff")
    assert not allow.allows("2001:db8:2::")
    assert not allow.allows("2001:db8:0:ffff:ffff:ffff:ffff:ffff")
    assert not allow.allows("10.0.0.1")


def test_ipv4_mapped_client_is_matched_as_ipv4() -> None:
    allow = IpAllowlist(["10.0.0.0/8"])
    assert allow.allows("::ffff:10.1.2.3")
    assert allow.allows(IPv6Address("::ffff:10.1.2.3"))
    assert not allow.allows("::ffff:11.0.0.1")


def test_ipv4_mapped_entry_behaves_like_the_ipv4_range() -> None:
    allow = IpAllowlist(["::ffff:10.0.0.0/104"])
    assert allow.allows("10.0.0.0")
    assert allow.allows("10.255.255.255")
    assert allow.allows("::ffff:10.9.9.9")
    assert not allow.allows("11.0.0.0")
    assert not allow.allows("9.255.255.255")


def test_ipv6_wildcard_does_not_admit_ipv4_clients() -> None:
    allow = IpAllowlist(["::/0"])
    assert allow.allows("2001:db8::1")
    assert not allow.allows("192.0.2.1")
    assert not allow.allows("::ffff:192.0.2.1")


def test_non_empty_allowlist_refuses_unknown_or_garbage_client() -> None:
    allow = IpAllowlist(["0.0.0.0/0", "::/0"])
    assert not allow.allows(None)
    assert not allow.allows("not-an-ip")
    assert not allow.allows("fe80::1%eth0")


def test_check_raises_ip_not_allowed() -> None:
    allow = IpAllowlist(["10.0.0.0/8"])
    allow.check("10.0.0.1")
    with pytest.raises(IpNotAllowed):
        allow.check("192.0.2.1")


def test_entries_are_normalised_and_deduplicated_for_display() -> None:
    allow = IpAllowlist(["10.1.2.3/8", "10.0.0.0/8", "2001:DB8::/32"])
    assert allow.entries == ("10.0.0.0/8", "2001:db8::/32")


def test_allowlist_refuses_invalid_entry_at_build_time() -> None:
    with pytest.raises(ValueError, match="not an IP address"):
        IpAllowlist(["10.0.0.0/8", "bogus"])


def test_adjacent_and_overlapping_ranges_are_merged() -> None:
    allow = IpAllowlist(["10.0.0.0/9", "10.128.0.0/9", "10.1.0.0/16", "10.0.0.5"])
    assert allow.allows("10.127.255.255")
    assert allow.allows("10.128.0.0")
    assert not allow.allows("11.0.0.0")


def test_ten_thousand_ranges_look_up_fast() -> None:
    rng = random.Random(1234)
    entries = [
        str(ipaddress.ip_network((rng.getrandbits(32), rng.randrange(8, 33)), strict=False))
        for _ in range(5_000)
    ] + [
        str(ipaddress.ip_network((rng.getrandbits(128), rng.randrange(16, 129)), strict=False))
        for _ in range(5_000)
    ]
    allow = IpAllowlist(entries)
    probes = [str(IPv4Address(rng.getrandbits(32))) for _ in range(10_000)]
    start = time.perf_counter()
    for probe in probes:
        allow.allows(probe)
    # A linear scan would do 10^8 comparisons; bisect does ~14 per probe.
    assert time.perf_counter() - start < 1.0


# ---- property: same answer as a naive ipaddress scan -----------------------------------

v4_networks = st.builds(
    lambda addr, plen: ipaddress.ip_network((addr, plen), strict=False),
    st.integers(0, 2**32 - 1),
    st.integers(0, 32),
)
v6_networks = st.builds(
    lambda addr, plen: ipaddress.ip_network((addr, plen), strict=False),
    st.integers(0, 2**128 - 1),
    st.integers(0, 128),
)
mapped_networks = st.builds(
    lambda addr, plen: ipaddress.ip_network((0xFFFF00000000 | addr, 96 + plen), strict=False),
    st.integers(0, 2**32 - 1),
    st.integers(0, 32),
)
addresses = st.one_of(
    st.integers(0, 2**32 - 1).map(IPv4Address),
    st.integers(0, 2**128 - 1).map(IPv6Address),
    st.integers(0, 2**32 - 1).map(lambda a: IPv6Address(0xFFFF00000000 | a)),
)


def _naive(networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network], addr: object) -> bool:
    assert isinstance(addr, IPv4Address | IPv6Address)
    if isinstance(addr, IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    for net in networks:
        if isinstance(net, ipaddress.IPv6Network) and net.prefixlen >= 96:
            mapped = ipaddress.IPv6Network("::ffff:0:0/96")
            if net.subnet_of(mapped):
                low = int(net.network_address) & 0xFFFFFFFF
                net = ipaddress.IPv4Network((low, net.prefixlen - 96))
        if addr.version == net.version and addr in net:
            return True
    return False


@settings(max_examples=300)
@given(
    networks=st.lists(st.one_of(v4_networks, v6_networks, mapped_networks), min_size=1),
    addr=addresses,
)
def test_allowlist_agrees_with_ipaddress_membership(
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network], addr: object
) -> None:
    allow = IpAllowlist([str(n) for n in networks])
    assert isinstance(addr, IPv4Address | IPv6Address)
    assert allow.allows(addr) is _naive(networks, addr)
    assert allow.allows(str(addr)) is _naive(networks, addr)


@given(net=st.one_of(v4_networks, v6_networks))
def test_first_and_last_address_of_any_range_match_and_neighbours_do_not(
    net: ipaddress.IPv4Network | ipaddress.IPv6Network,
) -> None:
    allow = IpAllowlist([str(net)])
    for edge in (net.network_address, net.broadcast_address):
        assert allow.allows(edge) is _naive([net], edge)
        if not (isinstance(edge, IPv6Address) and edge.ipv4_mapped):
            assert allow.allows(edge)  # mapped edges belong to IPv4 (documented)
    top = 2**32 - 1 if net.version == 4 else 2**128 - 1
    cls = IPv4Address if net.version == 4 else IPv6Address
    before, after = int(net.network_address) - 1, int(net.broadcast_address) + 1
    if before >= 0:
        neighbour = cls(before)
        assert allow.allows(neighbour) is _naive([net], neighbour)
    if after <= top:
        neighbour = cls(after)
        assert allow.allows(neighbour) is _naive([net], neighbour)


# ---- parse_address ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("203.0.113.9:5678", "203.0.113.9"),
        ("2001:db8::1", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("::ffff:203.0.113.9", "203.0.113.9"),
        ("[::ffff:203.0.113.9]:80", "203.0.113.9"),
        (" 203.0.113.9 ", "203.0.113.9"),
    ],
)
def test_parse_address_understands_proxy_forms(text: str, expected: str) -> None:
    assert str(parse_address(text)) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "unknown",
        "unix:",
        "_hidden",
        "fe80::1%eth0",
        "[fe80::1%eth0]:80",
        "[203.0.113.9]",
        "[2001:db8::1",
        "[2001:db8::1]x",
        "203.0.113.9:",
        "203.0.113.9:port",
        "203.0.113.9 1.2.3.4",
        "203.0.113.9/32",
    ],
)
def test_parse_address_refuses_garbage(text: str) -> None:
    assert parse_address(text) is None


# ---- resolve_client_ip -----------------------------------------------------------------

PROXIES = TrustedProxies(["10.0.0.0/8", "fd00::/8"])


def test_no_trusted_proxies_by_default_so_peer_is_the_client() -> None:
    assert resolve_client_ip("203.0.113.9", "198.51.100.1", TrustedProxies()) == IPv4Address(
        "203.0.113.9"
    )


def test_spoofed_forwarded_for_from_untrusted_peer_is_ignored() -> None:
    assert resolve_client_ip("203.0.113.9", "10.0.0.1, 192.0.2.1", PROXIES) == IPv4Address(
        "203.0.113.9"
    )


def test_trusted_peer_yields_rightmost_untrusted_forwarded_address() -> None:
    # The client claimed 192.0.2.1 (spoof); our proxy appended the real peer 198.51.100.7.
    got = resolve_client_ip("10.0.0.2", "192.0.2.1, 198.51.100.7", PROXIES)
    assert got == IPv4Address("198.51.100.7")


def test_chain_of_trusted_proxies_is_walked_right_to_left() -> None:
    got = resolve_client_ip("10.0.0.2", "192.0.2.1, 198.51.100.7, 10.0.0.3, 10.0.0.4", PROXIES)
    assert got == IPv4Address("198.51.100.7")


def test_multiple_forwarded_for_headers_joined_with_commas() -> None:
    got = resolve_client_ip("10.0.0.2", "192.0.2.1,198.51.100.7 ,, 10.0.0.3,", PROXIES)
    assert got == IPv4Address("198.51.100.7")


def test_all_trusted_chain_yields_leftmost_address() -> None:
    assert resolve_client_ip("10.0.0.2", "10.0.0.9, 10.0.0.3", PROXIES) == IPv4Address("10.0.0.9")


def test_trusted_peer_without_forwarded_for_is_itself_the_client() -> None:
    assert resolve_client_ip("10.0.0.2", None, PROXIES) == IPv4Address("10.0.0.2")
    assert resolve_client_ip("10.0.0.2", "", PROXIES) == IPv4Address("10.0.0.2")
    assert resolve_client_ip("10.0.0.2", " , ", PROXIES) == IPv4Address("10.0.0.2")


def test_ipv6_forwarded_forms_with_brackets_and_ports() -> None:
    assert resolve_client_ip("fd00::1", "[2001:db8::7]:4431", PROXIES) == IPv6Address("2001:db8::7")
    assert resolve_client_ip("[fd00::1]", "198.51.100.7:1234", PROXIES) == IPv4Address(
        "198.51.100.7"
    )


def test_mapped_peer_and_forwarded_entries_are_normalised_to_ipv4() -> None:
    got = resolve_client_ip("::ffff:10.0.0.2", "::ffff:198.51.100.7", PROXIES)
    assert got == IPv4Address("198.51.100.7")


def test_garbage_forwarded_entry_makes_the_client_unknown() -> None:
    # An attacker must not get to pick the address left of the garbage, nor be taken
    # for our own proxy (whose range an allowlist may well include).
    got = resolve_client_ip("10.0.0.2", "192.0.2.1, unknown, 10.0.0.3", PROXIES)
    assert got is None
    assert not IpAllowlist(["10.0.0.0/8", "192.0.2.1"]).allows(got)


def test_garbage_left_of_the_client_is_never_read() -> None:
    got = resolve_client_ip("10.0.0.2", "garbage, 198.51.100.7", PROXIES)
    assert got == IPv4Address("198.51.100.7")


def test_unknown_or_garbage_peer_yields_none() -> None:
    assert resolve_client_ip(None, "198.51.100.7", PROXIES) is None
    assert resolve_client_ip("unix:/tmp/sock", "198.51.100.7", PROXIES) is None


def test_zone_id_in_forwarded_for_is_garbage() -> None:
    assert resolve_client_ip("10.0.0.2", "fe80::1%eth0", PROXIES) is None


def test_trusted_proxies_repr_and_entries() -> None:
    assert PROXIES.entries == ("10.0.0.0/8", "fd00::/8")
    assert "10.0.0.0/8" in repr(PROXIES)
    assert PROXIES
    assert not TrustedProxies()
