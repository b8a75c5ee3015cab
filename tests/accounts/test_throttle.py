"""What per-IP limits count against."""

from __future__ import annotations

import pytest

from keyguard.accounts.throttle import IP_FAILURES, SignInThrottle, address_key
from keyguard.clock import FrozenClock
from keyguard.errors import RateLimited
from keyguard.state.memory import memory_state


@pytest.mark.parametrize(
    ("ip", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("unknown", "unknown"),
    ],
)
def test_an_ipv6_host_is_its_slash_64(ip, key):
    assert address_key(ip) == key


async def test_rotating_addresses_inside_one_slash_64_does_not_escape_the_limit():
    clock = FrozenClock()
    throttle = SignInThrottle(memory_state(clock), clock)
    limit, _ = IP_FAILURES
    for n in range(limit):
        await throttle.failed(f"person{n}@example.com", f"2001:db8::{n:x}")
    with pytest.raises(RateLimited):
        await throttle.admit("someone@example.com", "2001:db8::ffff")
    await throttle.admit("someone@example.com", "2001:db8:0:1::1")  # the next /64 is free
