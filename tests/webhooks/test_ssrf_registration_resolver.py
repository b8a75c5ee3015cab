"""Registration resolves a host name: any forbidden answer refuses the URL, no answer
accepts it (every send resolves and checks it again)."""

from __future__ import annotations

import ipaddress

import anyio
import pytest

from keyguard.webhooks import ssrf
from keyguard.webhooks.ssrf import (
    ResolutionFailed,
    UnsafeWebhookUrl,
    validate_for_registration,
)

LOOPBACK = [ipaddress.ip_network("127.0.0.0/8")]


def answering(*answers: str, calls: list[str] | None = None):
    async def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(f"{host}:{port}")
        return list(answers)

    return resolve


async def nxdomain(host: str, port: int) -> list[str]:
    raise ResolutionFailed(f"{host} did not resolve")


class Stuck:
    """A resolver that answers only when released (as a hung getaddrinfo would, late)."""

    def __init__(self, answer: str = "8.8.8.8") -> None:
        self.answer = answer
        self.release = anyio.Event()
        self.started = 0

    async def __call__(self, host: str, port: int) -> list[str]:
        self.started += 1
        await self.release.wait()
        return [self.answer]


async def _refusal(url: str, resolver, allow_private=()) -> UnsafeWebhookUrl:
    with pytest.raises(UnsafeWebhookUrl) as info:
        await validate_for_registration(url, list(allow_private), resolver=resolver)
    return info.value


async def test_a_name_resolving_to_loopback_is_refused() -> None:
    calls: list[str] = []
    refused = await _refusal("https://runsc/in", answering("127.0.0.1", calls=calls))
    assert refused.code == "ssrf_blocked"
    assert "127.0.0.1" not in refused.message
    assert calls == ["runsc:443"]


@pytest.mark.parametrize(
    "answers",
    [
        ("10.0.0.7",),
        ("8.8.8.8", "169.254.169.254"),  # one bad answer among public ones is enough
        ("2606:4700::1", "::1"),
        ("::ffff:192.168.1.1",),
    ],
)
async def test_any_forbidden_answer_refuses_the_url(answers: tuple[str, ...]) -> None:
    refused = await _refusal("https://hooks.example.com/in", answering(*answers))
    assert refused.code == "ssrf_blocked"


async def test_public_answers_are_accepted_and_the_url_normalized() -> None:
    parsed = await validate_for_registration(
        "https://Hooks.Example.com:8443/in", [], resolver=answering("8.8.8.8", "2001:4860::1")
    )
    assert (parsed.url, parsed.port) == ("https://hooks.example.com:8443/in", 8443)


async def test_a_name_that_does_not_resolve_yet_is_accepted() -> None:
    parsed = await validate_for_registration("https://not-yet.invalid/x", [], resolver=nxdomain)
    assert parsed.host == "not-yet.invalid"


async def test_an_empty_answer_is_accepted_like_no_answer() -> None:
    assert await validate_for_registration("https://empty.example/x", [], resolver=answering())


async def test_a_resolver_that_does_not_answer_in_time_is_accepted() -> None:
    stuck = Stuck()
    with anyio.fail_after(5):
        parsed = await validate_for_registration(
            "https://slow.example/x", [], resolver=stuck, timeout=0.05
        )
    assert parsed.host == "slow.example"
    stuck.release.set()
    await _settle()


async def _settle() -> None:
    for _ in range(100):
        if not ssrf._lookups:
            return
        await anyio.sleep(0.01)
    raise AssertionError("registration lookups still running")


async def test_hung_lookups_hold_their_slots_and_later_urls_go_unchecked() -> None:
    """getaddrinfo cannot be cancelled: a hung lookup keeps its thread (and its slot) past
    the timeout, so registration never piles more of them onto the resolver threads."""
    stuck = Stuck(answer="127.0.0.1")
    for n in range(ssrf.MAX_REGISTRATION_LOOKUPS):
        await validate_for_registration(
            f"https://hung{n}.example/x", [], resolver=stuck, timeout=0.01
        )
    assert stuck.started == ssrf.MAX_REGISTRATION_LOOKUPS
    # Slots full: accepted without a lookup (the send-time check still guards delivery).
    blocked_if_asked = answering("127.0.0.1")
    await validate_for_registration("https://next.example/x", [], resolver=blocked_if_asked)
    stuck.release.set()
    await _settle()
    # Slots free again: the same URL is resolved and refused.
    await _refusal("https://next.example/x", blocked_if_asked)


async def test_allow_private_lets_a_name_resolving_into_it_through() -> None:
    parsed = await validate_for_registration(
        "http://dev.test:8000/h", LOOPBACK, resolver=answering("127.0.0.1")
    )
    assert parsed.scheme == "http"


async def test_metadata_answers_stay_forbidden_inside_allow_private() -> None:
    allow = [ipaddress.ip_network("169.254.0.0/16")]
    refused = await _refusal("https://meta.test/x", answering("169.254.169.254"), allow)
    assert refused.code == "ssrf_blocked"


async def test_plain_http_to_a_name_resolving_outside_allow_private_needs_https() -> None:
    refused = await _refusal("http://dev.test/h", answering("8.8.8.8"), LOOPBACK)
    assert refused.code == "https_required"


async def test_ip_literals_and_localhost_never_ask_the_resolver() -> None:
    calls: list[str] = []
    resolver = answering("10.0.0.1", calls=calls)
    assert await validate_for_registration("https://8.8.8.8/x", [], resolver=resolver)
    assert await validate_for_registration("http://localhost:9/x", LOOPBACK, resolver=resolver)
    assert (await _refusal("https://localhost/x", resolver)).code == "ssrf_blocked"
    assert calls == []


async def test_malformed_urls_are_refused_before_any_lookup() -> None:
    calls: list[str] = []
    refused = await _refusal("https://user@hooks.example.com/", answering(calls=calls))
    assert (refused.code, calls) == ("invalid_url", [])
