"""Both state backends behave the same: in-process and Redis (a real server)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from keyguard.clock import FrozenClock
from keyguard.state.memory import memory_state
from keyguard.state.protocols import StateStores
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


async def test_sliding_window_burst_and_refusal(stores: StateStores) -> None:
    bucket = unique("rl")
    limiter = stores.rate_limiter
    decisions = [await limiter.hit(bucket, 3, 60) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions[:3]] == [2, 1, 0]
    assert decisions[3].reset_seconds >= 1
    assert await limiter.blocked(bucket, 3, 60) >= 1
    assert await limiter.blocked(unique("rl"), 3, 60) == 0
    await limiter.reset(bucket, 3, 60)
    assert (await limiter.hit(bucket, 3, 60)).allowed


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


@pytest.mark.redis
async def test_redis_cache_bus_reaches_other_instances_only(redis_url: str) -> None:
    a, b = redis_state(redis_url), redis_state(redis_url)
    seen_a: list[str] = []
    seen_b: asyncio.Queue[str] = asyncio.Queue()
    try:
        await a.cache_bus.start(seen_a.append)
        await b.cache_bus.start(seen_b.put_nowait)
        key_id = unique("key")
        await a.cache_bus.publish(key_id)
        assert await asyncio.wait_for(seen_b.get(), timeout=5) == key_id
        assert seen_a == []  # an instance ignores its own messages
    finally:
        await a.close()
        await b.close()
