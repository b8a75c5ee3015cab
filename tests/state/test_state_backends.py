"""Both state backends behave the same: in-process and Redis (a real server)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from keyguard.clock import FrozenClock
from keyguard.state.memory import MemoryRateLimiter, MemoryReplayGuard, memory_state
from keyguard.state.protocols import RateLimiter, StateStores
from keyguard.state.redis import PREFIX, redis_state


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def stores(request: pytest.FixtureRequest) -> AsyncIterator[StateStores]:
    if request.param == "memory":
        yield memory_state(FrozenClock())
        return
    state = redis_state(request.getfixturevalue("redis_url"))
    yield state
    await state.close()


def unique(name: str) -> str:
    return f"{name}-{secrets.token_hex(6)}"


async def test_a_token_is_first_used_once(stores: StateStores) -> None:
    token = unique("sig")
    assert await stores.replay_guard.first_use(token, 600)
    assert not await stores.replay_guard.first_use(token, 600)
    assert await stores.replay_guard.first_use(unique("sig"), 600)


async def test_a_spend_is_all_or_nothing(stores: StateStores) -> None:
    spent_before, fresh = unique("sig"), unique("totp")
    assert await stores.replay_guard.first_use(spent_before, 600)
    refused = await stores.ledger.spend(((fresh, 600), (spent_before, 600)))
    assert (refused.refused, refused.replayed) == ("replayed", 1)
    # The fresh token was not spent by the refused request.
    assert (await stores.ledger.spend(((fresh, 600),))).refused is None
    assert (await stores.ledger.spend(((fresh, 600),))).replayed == 0


async def test_a_spend_over_the_limit_spends_no_token(stores: StateStores) -> None:
    bucket, token = unique("rl"), unique("sig")
    first = await stores.ledger.spend((), bucket, 1, 60)
    assert first.refused is None
    assert first.rate is not None
    assert (first.rate.allowed, first.rate.remaining) == (True, 0)
    over = await stores.ledger.spend(((token, 600),), bucket, 1, 60)
    assert over.refused == "rate"
    assert over.rate is not None
    assert over.rate.reset_seconds >= 1
    assert await stores.replay_guard.first_use(token, 600)  # never spent


async def test_a_spend_counts_one_request_with_its_tokens(stores: StateStores) -> None:
    bucket, token = unique("rl"), unique("sig")
    spent = await stores.ledger.spend(((token, 600),), bucket, 5, 60)
    assert spent.refused is None
    assert spent.rate is not None
    assert spent.rate.remaining == 4
    assert (await stores.rate_limiter.peek(bucket, 5, 60)).remaining == 4
    assert not await stores.replay_guard.first_use(token, 600)


async def test_a_vault_value_is_taken_once_even_by_racing_takers(stores: StateStores) -> None:
    name = unique("challenge")
    await stores.vault.put(name, "value", 60)
    assert await stores.vault.peek(name) == "value"  # peeking leaves it in place
    taken = await asyncio.gather(*(stores.vault.take(name) for _ in range(8)))
    assert taken.count("value") == 1
    assert taken.count(None) == 7
    assert await stores.vault.peek(name) is None


async def test_a_vault_counter_counts_every_racing_increment(stores: StateStores) -> None:
    name = unique("counter")
    seen = await asyncio.gather(*(stores.vault.count(name, 60) for _ in range(50)))
    assert sorted(seen) == list(range(1, 51))  # each increment saw its own value
    assert await stores.vault.peek(name) == "50"
    assert await stores.vault.take(name) == "50"
    assert await stores.vault.count(name, 60) == 1  # taken: starts again at zero


async def test_a_memory_vault_value_expires() -> None:
    clock = FrozenClock()
    vault = memory_state(clock).vault
    await vault.put("challenge", "value", 60)
    clock.advance(61)
    assert await vault.peek("challenge") is None
    assert await vault.take("challenge") is None


async def test_a_memory_replay_token_is_refused_until_it_expires() -> None:
    clock = FrozenClock()
    guard = memory_state(clock).replay_guard
    assert await guard.first_use("sig", 60)
    clock.advance(59)
    assert not await guard.first_use("sig", 60)
    clock.advance(2)
    assert await guard.first_use("sig", 60)


async def test_the_memory_replay_guard_forgets_expired_tokens() -> None:
    clock = FrozenClock()
    guard = MemoryReplayGuard(clock)
    for i in range(10_000):
        assert await guard.first_use(f"t{i}", 1)
        clock.advance(0.01)  # about 100 tokens live at any time
    assert len(guard._seen) < 2 * 1024
    # A live token is never swept early.
    assert not await guard.first_use("t9999", 1)


@pytest.mark.redis
async def test_a_redis_vault_value_expires_after_its_ttl(redis_url: str) -> None:
    state = redis_state(redis_url)
    client = aioredis.Redis.from_url(redis_url)
    try:
        name = unique("challenge")
        await state.vault.put(name, "value", 300)
        assert 290_000 < await client.pttl(f"{PREFIX}:vault:{name}") <= 300_000
    finally:
        await client.aclose()
        await state.close()


# A day-long window: on Redis the window runs on real time, and a window boundary between
# two hits of a 60 s one would turn the counts fractional.
DAY = 86_400


async def test_sliding_window_burst_and_refusal(stores: StateStores) -> None:
    bucket = unique("rl")
    limiter = stores.rate_limiter
    decisions = [await limiter.hit(bucket, 3, DAY) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions[:3]] == [2, 1, 0]
    assert decisions[3].reset_seconds >= 1
    assert await limiter.blocked(bucket, 3, DAY) >= 1
    assert await limiter.blocked(unique("rl"), 3, DAY) == 0
    await limiter.reset(bucket, 3, DAY)
    assert (await limiter.hit(bucket, 3, DAY)).allowed


async def test_peek_reports_what_a_hit_would_and_counts_nothing(stores: StateStores) -> None:
    bucket = unique("rl")
    limiter = stores.rate_limiter
    fresh = await limiter.peek(bucket, 3, DAY)
    assert (fresh.allowed, fresh.limit, fresh.remaining) == (True, 3, 3)
    await limiter.hit(bucket, 3, DAY)
    for _ in range(3):  # peeking again and again changes nothing
        seen = await limiter.peek(bucket, 3, DAY)
        assert (seen.allowed, seen.remaining) == (True, 2)
        assert 1 <= seen.reset_seconds <= DAY
    for _ in range(2):
        await limiter.hit(bucket, 3, DAY)
    full = await limiter.peek(bucket, 3, DAY)
    assert (full.allowed, full.remaining) == (False, 0)
    assert full.reset_seconds >= 1


async def _memory_at_fractional_count(bucket: str) -> RateLimiter:
    """4 hits of limit 4, then 3/8 into the next window: they weigh 4 * 5/8 = 2.5."""
    clock = FrozenClock(DAY * 20_000)  # the start of a window
    limiter = MemoryRateLimiter(clock)
    for _ in range(4):
        assert (await limiter.hit(bucket, 4, DAY)).allowed
    clock.advance(DAY + DAY * 3 / 8)
    return limiter


async def _redis_at_fractional_count(state: StateStores, redis_url: str, bucket: str) -> None:
    """The same state on Redis, where time is real: ``limits`` keeps a window's count in a
    key living two periods from its first hit, and rolls it over to the previous window
    once less than one period is left; that remaining TTL is the previous window's
    weight. Shortening it to 5/8 of a period makes the 4 hits weigh 2.5 (less a few ms
    of real time: ~1e-7 of a count in a day-long window)."""
    for _ in range(4):
        assert (await state.rate_limiter.hit(bucket, 4, DAY)).allowed
    client = aioredis.Redis.from_url(redis_url)
    try:
        (key,) = [k async for k in client.scan_iter(match=f"{PREFIX}:rl:*{bucket}*")]
        assert await client.pexpire(key, DAY * 1000 * 5 // 8)
    finally:
        await client.aclose()


@pytest.mark.parametrize("backend", ["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def test_backends_agree_on_remaining_at_a_fractional_weighted_count(
    backend: str, request: pytest.FixtureRequest
) -> None:
    """``limits``' rule, on both: allowed while floor(weighted) + 1 <= limit, remaining is
    limit - floor(weighted). At 2.5 of 4, two more hits fit, not one."""
    bucket = unique("rl")
    if backend == "memory":
        limiter = await _memory_at_fractional_count(bucket)
        close = None
    else:
        redis_url = request.getfixturevalue("redis_url")
        state = redis_state(redis_url)
        close = state.close
        await _redis_at_fractional_count(state, redis_url, bucket)
        limiter = state.rate_limiter
    try:
        decisions = [await limiter.hit(bucket, 4, DAY) for _ in range(3)]
        assert [(d.allowed, d.remaining) for d in decisions] == [(True, 1), (True, 0), (False, 0)]
        assert await limiter.blocked(bucket, 4, DAY) >= 1
    finally:
        if close is not None:
            await close()


@pytest.mark.parametrize("limit", [1, 2, 3, 5])
@pytest.mark.parametrize("burst", [1, 2, 3, 5, 7])
async def test_memory_remaining_is_positive_exactly_when_the_next_hit_fits(
    limit: int, burst: int
) -> None:
    """At fractional weighted counts too (the previous window weighted by 1/7ths), and
    the reset of a refusal is exact."""
    period = 70
    for step in range(8):
        clock = FrozenClock(period * 1_000)
        limiter = MemoryRateLimiter(clock)
        for _ in range(burst):
            await limiter.hit("k", limit, period)
        clock.advance(period + step * 10 + 0.5)
        decision = await limiter.hit("k", limit, period)
        for _ in range(limit + 1):
            following = await limiter.hit("k", limit, period)
            assert (decision.remaining > 0) == following.allowed, (step, decision, following)
            assert (await limiter.blocked("k", limit, period) == 0) == (following.remaining > 0)
            decision = following
        assert not decision.allowed
        # Its reset is the first whole second at which a hit fits again.
        assert await limiter.blocked("k", limit, period) == decision.reset_seconds
        clock.advance(decision.reset_seconds - 1)
        assert await limiter.blocked("k", limit, period) > 0
        clock.advance(1)
        assert await limiter.blocked("k", limit, period) == 0


@pytest.mark.redis
async def test_redis_replay_entries_expire_after_their_ttl(redis_url: str) -> None:
    state = redis_state(redis_url)
    client = aioredis.Redis.from_url(redis_url)
    try:
        token = unique("sig")
        await state.replay_guard.first_use(token, 600)
        ttl_ms = await client.pttl(f"{PREFIX}:seen:{token}")
        assert 590_000 < ttl_ms <= 600_000
    finally:
        await client.aclose()
        await state.close()


async def _receive(queue: asyncio.Queue[str], wanted: str, received: list[str]) -> None:
    """Wait for ``wanted``, keeping every message before it in ``received``: the channel is
    shared with every other test (xdist workers, a concurrent run), so theirs may come too."""
    async with asyncio.timeout(5):
        while (message := await queue.get()) != wanted:
            received.append(message)
    received.append(message)


@pytest.mark.redis
async def test_redis_cache_bus_reaches_other_instances_only(redis_url: str) -> None:
    a, b = redis_state(redis_url), redis_state(redis_url)
    inbox_a: asyncio.Queue[str] = asyncio.Queue()
    inbox_b: asyncio.Queue[str] = asyncio.Queue()
    seen_a: list[str] = []
    seen_b: list[str] = []
    try:
        await a.cache_bus.start(inbox_a.put_nowait)
        await b.cache_bus.start(inbox_b.put_nowait)
        key_id = unique("key")
        await a.cache_bus.publish(key_id)
        await _receive(inbox_b, key_id, seen_b)
        # Pub/sub keeps the order: once A has B's later message, it would also have had
        # its own, had it not ignored it.
        marker = unique("marker")
        await b.cache_bus.publish(marker)
        await _receive(inbox_a, marker, seen_a)
        assert key_id not in seen_a  # an instance ignores its own messages
        # And the other way round: once B has A's later message, it would have had its own.
        back = unique("marker")
        await a.cache_bus.publish(back)
        await _receive(inbox_b, back, seen_b)
        assert marker not in seen_b
    finally:
        await a.close()
        await b.close()
