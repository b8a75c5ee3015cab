"""Session passwords: every attempt counts per session (a right one clears it), only
failures count per IP; a blocked session or IP is refused before the password is looked
at, and parallel guesses cannot slip past the count."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime

import bcrypt
import pytest

from keyguard.clock import FrozenClock
from keyguard.errors import RateLimited
from keyguard.state.memory import MemoryRateLimiter
from keyguard.state.protocols import RateDecision
from keyguard.uploads.errors import SessionPasswordInvalid
from keyguard.uploads.photos import IP_ATTEMPTS, SESSION_ATTEMPTS, check_password
from keyguard.uploads.views import SessionView

PASSWORD = "claim-4521-pin"
# Cheap rounds: these tests verify hundreds of passwords.
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
IP = "198.51.100.9"


def _session(n: int = 0) -> SessionView:
    now = datetime.now(UTC)
    return SessionView(
        id=f"sess_{n:016d}", project_id="proj_x", delivery_mode="poll", webhook_url=None,
        created_at=now, expires_at=now, max_photos=20, password_hash=HASH,
    )  # fmt: skip


class CountingLimiter(MemoryRateLimiter):
    def __init__(self) -> None:
        super().__init__(FrozenClock())
        self.hits: list[str] = []

    async def hit(self, bucket: str, limit: int, period_seconds: int) -> RateDecision:
        self.hits.append(bucket)
        return await super().hit(bucket, limit, period_seconds)


@pytest.fixture
def limiter() -> CountingLimiter:
    return CountingLimiter()


async def test_many_right_passwords_from_one_ip_are_never_throttled(
    limiter: CountingLimiter,
) -> None:
    # A school behind one NAT'd address: far more uploads than the IP's failure budget.
    ip_limit, _ = IP_ATTEMPTS
    for n in range(3 * ip_limit):
        await check_password(_session(n % 10), PASSWORD, limiter=limiter, client_ip=IP)
    assert not [bucket for bucket in limiter.hits if bucket.startswith("upload-pw:ip:")]


async def test_parallel_guesses_cannot_outrun_the_session_count(
    limiter: CountingLimiter,
) -> None:
    row = _session()
    limit, _ = SESSION_ATTEMPTS

    async def guess() -> str:
        try:
            await check_password(row, "guess", limiter=limiter, client_ip=IP)
        except SessionPasswordInvalid:
            return "wrong"
        except RateLimited:
            return "throttled"
        return "accepted"

    outcomes = await asyncio.gather(*(guess() for _ in range(100)))
    assert outcomes.count("wrong") == limit  # bcrypt ran for these only
    assert outcomes.count("throttled") == 100 - limit


async def test_wrong_and_missing_passwords_count_per_session(limiter: CountingLimiter) -> None:
    row = _session()
    limit, _ = SESSION_ATTEMPTS
    for n in range(limit):
        with pytest.raises(SessionPasswordInvalid):
            await check_password(row, None if n % 2 else "guess", limiter=limiter, client_ip=IP)
    # Blocked: refused before checking, so even the right password learns nothing.
    with pytest.raises(RateLimited) as throttled:
        await check_password(row, PASSWORD, limiter=limiter, client_ip=IP)
    assert int(throttled.value.headers["Retry-After"]) >= 1
    # Another session, same IP: still under the IP's budget.
    await check_password(_session(1), PASSWORD, limiter=limiter, client_ip=IP)


async def test_wrong_passwords_count_per_ip_across_sessions(limiter: CountingLimiter) -> None:
    ip_limit, _ = IP_ATTEMPTS
    per_session, _ = SESSION_ATTEMPTS
    for n in range(ip_limit):
        with pytest.raises(SessionPasswordInvalid):
            await check_password(
                _session(n // (per_session - 1)), "guess", limiter=limiter, client_ip=IP
            )
    fresh = _session(999)
    with pytest.raises(RateLimited):
        await check_password(fresh, PASSWORD, limiter=limiter, client_ip=IP)
    await check_password(fresh, PASSWORD, limiter=limiter, client_ip="203.0.113.50")


async def test_a_right_password_clears_the_session_failures(limiter: CountingLimiter) -> None:
    row = _session()
    limit, _ = SESSION_ATTEMPTS
    for _ in range(3):
        for _ in range(limit - 1):
            with pytest.raises(SessionPasswordInvalid):
                await check_password(row, "guess", limiter=limiter, client_ip=IP)
        await check_password(row, PASSWORD, limiter=limiter, client_ip=IP)


async def test_a_session_without_password_counts_nothing(limiter: CountingLimiter) -> None:
    row = dataclasses.replace(_session(), password_hash=None)
    await check_password(row, None, limiter=limiter, client_ip=IP)
    assert limiter.hits == []
