"""Redis state (``KEYGUARD_REDIS_URL``): several instances act as one service.

- Rate limits: the ``limits`` library's sliding window counter on its Redis storage
  (atomic Lua scripts), the algorithm the in-process backend mirrors.
- Replay guard: ``SET token 1 NX PX ttl`` -- atomic "first use wins" across instances.
- Cache bus: pub/sub on one channel. Every key change is published; each instance drops
  the key from its cache when the message arrives (sub-millisecond on a LAN), so a
  revocation on instance A holds on instance B at its next request. After a lost
  connection the subscriber clears the whole cache (it may have missed messages); the
  cache TTL bounds staleness even if Redis is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import time
from collections.abc import Callable

import redis.asyncio as aioredis
from limits import RateLimitItemPerSecond
from limits.aio.storage import RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from keyguard.state.protocols import RateDecision, StateStores

__all__ = [
    "CLEAR_ALL",
    "RedisCacheBus",
    "RedisRateLimiter",
    "RedisReplayGuard",
    "redis_state",
]

log = logging.getLogger("keyguard.state")

PREFIX = "keyguard"
CHANNEL = f"{PREFIX}:key-invalidations"
# Delivered to on_invalidate after a reconnect: drop every cached key.
CLEAR_ALL = "*"
_RECONNECT_SECONDS = 1.0


def _limits_uri(url: str) -> str:
    # limits names its asyncio Redis storages "async+redis://" / "async+rediss://".
    return url if url.startswith("async+") else "async+" + url


class RedisRateLimiter:
    def __init__(self, url: str, client: aioredis.Redis) -> None:
        self._storage = RedisStorage(
            _limits_uri(url),
            implementation="redispy",
            key_prefix=f"{PREFIX}:rl",
            # One pool, closed with the client (limits types its options too narrowly).
            connection_pool=client.connection_pool,  # type: ignore[arg-type]
        )
        self._limiter = SlidingWindowCounterRateLimiter(self._storage)

    async def hit(self, bucket: str, limit: int, period_seconds: int) -> RateDecision:
        item = RateLimitItemPerSecond(limit, period_seconds)
        allowed = await self._limiter.hit(item, bucket)
        stats = await self._limiter.get_window_stats(item, bucket)
        reset = max(1, math.ceil(stats.reset_time - time.time()))
        return RateDecision(allowed, limit, max(0, stats.remaining), reset)

    async def blocked(self, bucket: str, limit: int, period_seconds: int) -> int:
        item = RateLimitItemPerSecond(limit, period_seconds)
        if await self._limiter.test(item, bucket):
            return 0
        stats = await self._limiter.get_window_stats(item, bucket)
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def peek(self, bucket: str, limit: int, period_seconds: int) -> RateDecision:
        item = RateLimitItemPerSecond(limit, period_seconds)
        stats = await self._limiter.get_window_stats(item, bucket)
        reset = max(1, math.ceil(stats.reset_time - time.time()))
        remaining = max(0, stats.remaining)
        return RateDecision(remaining > 0, limit, remaining, reset)

    async def reset(self, bucket: str, limit: int, period_seconds: int) -> None:
        await self._limiter.clear(RateLimitItemPerSecond(limit, period_seconds), bucket)


class RedisReplayGuard:
    def __init__(self, client: aioredis.Redis) -> None:
        self._redis = client

    async def first_use(self, token: str, ttl_seconds: float) -> bool:
        stored = await self._redis.set(
            f"{PREFIX}:seen:{token}", b"1", nx=True, px=max(1, int(ttl_seconds * 1000))
        )
        return bool(stored)


class RedisVault:
    def __init__(self, client: aioredis.Redis) -> None:
        self._redis = client

    async def put(self, name: str, value: str, ttl_seconds: float) -> None:
        await self._redis.set(
            f"{PREFIX}:vault:{name}", value.encode(), px=max(1, int(ttl_seconds * 1000))
        )

    async def take(self, name: str) -> str | None:
        found = await self._redis.getdel(f"{PREFIX}:vault:{name}")  # atomic: one taker
        return None if found is None else _text(found)

    async def peek(self, name: str) -> str | None:
        found = await self._redis.get(f"{PREFIX}:vault:{name}")
        return None if found is None else _text(found)

    async def count(self, name: str, ttl_seconds: float) -> int:
        key = f"{PREFIX}:vault:{name}"
        async with self._redis.pipeline(transaction=True) as pipe:  # MULTI/EXEC
            pipe.incr(key)
            pipe.pexpire(key, max(1, int(ttl_seconds * 1000)))
            value, _ = await pipe.execute()
        return int(value)


class RedisCacheBus:
    """Key invalidations over Redis pub/sub; an instance ignores its own messages."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._redis = client
        self._origin = secrets.token_hex(8)
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def publish(self, key_id: str) -> None:
        await self._redis.publish(CHANNEL, f"{self._origin} {key_id}")

    async def start(self, on_invalidate: Callable[[str], None]) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._listen(on_invalidate), name="keyguard-bus")
            # Subscribed before start() returns: no change made after it can be missed.
            ready = asyncio.create_task(self._ready.wait())
            await asyncio.wait([ready, self._task], return_when=asyncio.FIRST_COMPLETED)
            ready.cancel()

    async def _listen(self, on_invalidate: Callable[[str], None]) -> None:
        first = True
        while True:
            try:
                async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    if not first:
                        on_invalidate(CLEAR_ALL)  # we may have missed messages meanwhile
                    first = False
                    self._ready.set()
                    async for message in pubsub.listen():
                        origin, _, key_id = _text(message.get("data")).partition(" ")
                        if key_id and origin != self._origin:
                            on_invalidate(key_id)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep listening whatever happened
                log.warning("cache bus: %s; reconnecting", type(exc).__name__)
                self._ready.set()
                await asyncio.sleep(_RECONNECT_SECONDS)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


def _text(data: object) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return data if isinstance(data, str) else ""


def redis_state(url: str) -> StateStores:
    """The three stores on one Redis connection pool."""
    client = aioredis.Redis.from_url(url)
    bus = RedisCacheBus(client)

    async def close() -> None:
        await bus.close()
        await client.aclose()

    return StateStores(
        rate_limiter=RedisRateLimiter(url, client),
        replay_guard=RedisReplayGuard(client),
        cache_bus=bus,
        vault=RedisVault(client),
        close=close,
    )
