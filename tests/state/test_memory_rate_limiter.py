"""The in-process sliding window counter, on an injected clock."""

from __future__ import annotations

from keyguard.clock import FrozenClock
from keyguard.state.memory import MemoryRateLimiter


async def test_burst_then_refusal_then_the_window_slides() -> None:
    clock = FrozenClock(60 * 16_667)  # the start of a 60 s window
    limiter = MemoryRateLimiter(clock)
    decisions = [await limiter.hit("k", 3, 60) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions[:3]] == [2, 1, 0]
    retry = decisions[3].reset_seconds
    assert 60 < retry <= 100  # next window, once the old burst weighs < 3 of 3
    assert await limiter.blocked("k", 3, 60) == retry
    clock.advance(retry - 1)
    assert not (await limiter.hit("k", 3, 60)).allowed
    clock.advance(1)
    assert (await limiter.hit("k", 3, 60)).allowed


async def test_previous_window_is_weighted_by_its_overlap() -> None:
    clock = FrozenClock(60 * 16_667)
    limiter = MemoryRateLimiter(clock)
    for _ in range(10):
        assert (await limiter.hit("k", 10, 60)).allowed
    clock.advance(90)  # half-way into the next window: 10 * 0.5 still count
    results = [(await limiter.hit("k", 10, 60)).allowed for _ in range(6)]
    assert results == [True] * 5 + [False]


async def test_buckets_are_independent_and_blocked_counts_nothing() -> None:
    clock = FrozenClock(60 * 16_667)
    limiter = MemoryRateLimiter(clock)
    for _ in range(5):
        assert await limiter.blocked("a", 1, 60) == 0
    assert (await limiter.hit("a", 1, 60)).allowed
    assert (await limiter.hit("b", 1, 60)).allowed
    assert await limiter.blocked("a", 1, 60) >= 1
    await limiter.reset("a", 1, 60)
    assert (await limiter.hit("a", 1, 60)).allowed


async def test_idle_buckets_are_swept() -> None:
    clock = FrozenClock(60 * 16_667)
    limiter = MemoryRateLimiter(clock)
    for i in range(limiter._SWEEP_EVERY - 1):
        await limiter.hit(f"old{i}", 5, 10)
    clock.advance(30)
    await limiter.hit("new", 5, 10)  # the sweep runs on this hit
    assert set(limiter._buckets) == {"new"}
