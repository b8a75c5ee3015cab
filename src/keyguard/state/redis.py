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
from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

import redis.asyncio as aioredis
from limits import RateLimitItemPerSecond
from limits.aio.storage import RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from redis.exceptions import RedisError

from keyguard.errors import StateUnavailable
from keyguard.state.protocols import RateDecision, Spent, StateStores

__all__ = [
    "CLEAR_ALL",
    "RedisCacheBus",
    "RedisLedger",
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

T = TypeVar("T")
FailurePolicy = Literal["closed", "open"]


class _Guard:
    """What a Redis failure means for a check: refused (``StateUnavailable``, 503: fail
    closed, the default) or passed (``KEYGUARD_STATE_FAILURE=open``: the operator chose
    availability over the checks that need shared state). Every call is bounded by
    ``timeout``, so a Redis that stopped answering is unavailable, not a hang."""

    _WARN_EVERY = 10.0  # seconds: one warning per outage window, not one per request

    def __init__(self, failure: FailurePolicy, timeout: float) -> None:
        self.failure = failure
        self.timeout = timeout
        self._warned = -math.inf

    async def run(self, call: Awaitable[T], passed: T) -> T:
        """``call``'s answer; on failure ``passed`` (open) or ``StateUnavailable``."""
        try:
            async with asyncio.timeout(self.timeout):
                return await call
        except (RedisError, OSError, TimeoutError) as exc:
            now = time.monotonic()
            if now - self._warned >= self._WARN_EVERY:
                self._warned = now
                log.warning(
                    "shared state unavailable (%s): %s",
                    type(exc).__name__,
                    "checks that need it pass" if self.failure == "open" else "refusing (503)",
                )
            if self.failure == "open":
                return passed
            raise StateUnavailable() from exc


def _limits_uri(url: str) -> str:
    # limits names its asyncio Redis storages "async+redis://" / "async+rediss://".
    return url if url.startswith("async+") else "async+" + url


class RedisRateLimiter:
    def __init__(self, url: str, client: aioredis.Redis, guard: _Guard) -> None:
        self._guard = guard
        self._storage = RedisStorage(
            _limits_uri(url),
            implementation="redispy",
            key_prefix=f"{PREFIX}:rl",
            # One pool, closed with the client (limits types its options too narrowly).
            connection_pool=client.connection_pool,  # type: ignore[arg-type]
        )
        self._limiter = SlidingWindowCounterRateLimiter(self._storage)

    async def hit(self, bucket: str, limit: int, period_seconds: int) -> RateDecision:
        passed = RateDecision(True, limit, limit, period_seconds)
        return await self._guard.run(self.count(bucket, limit, period_seconds), passed)

    async def count(self, bucket: str, limit: int, period_seconds: int) -> RateDecision:
        """Unguarded :meth:`hit` (the caller runs it under the guard)."""
        item = RateLimitItemPerSecond(limit, period_seconds)
        allowed = await self._limiter.hit(item, bucket)
        stats = await self._limiter.get_window_stats(item, bucket)
        reset = max(1, math.ceil(stats.reset_time - time.time()))
        return RateDecision(allowed, limit, max(0, stats.remaining), reset)

    async def blocked(self, bucket: str, limit: int, period_seconds: int) -> int:
        return await self._guard.run(self.wait(bucket, limit, period_seconds), 0)

    async def wait(self, bucket: str, limit: int, period_seconds: int) -> int:
        """Unguarded :meth:`blocked`."""
        item = RateLimitItemPerSecond(limit, period_seconds)
        if await self._limiter.test(item, bucket):
            return 0
        stats = await self._limiter.get_window_stats(item, bucket)
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def peek(self, bucket: str, limit: int, period_seconds: int) -> RateDecision:
        passed = RateDecision(True, limit, limit, period_seconds)
        return await self._guard.run(self._peek(bucket, limit, period_seconds), passed)

    async def _peek(self, bucket: str, limit: int, period_seconds: int) -> RateDecision:
        item = RateLimitItemPerSecond(limit, period_seconds)
        stats = await self._limiter.get_window_stats(item, bucket)
        reset = max(1, math.ceil(stats.reset_time - time.time()))
        remaining = max(0, stats.remaining)
        return RateDecision(remaining > 0, limit, remaining, reset)

    async def reset(self, bucket: str, limit: int, period_seconds: int) -> None:
        item = RateLimitItemPerSecond(limit, period_seconds)
        await self._guard.run(self._limiter.clear(item, bucket), None)


def _seen_key(token: str) -> str:
    return f"{PREFIX}:seen:{token}"


def _milliseconds(ttl_seconds: float) -> int:
    return max(1, int(ttl_seconds * 1000))


class RedisReplayGuard:
    def __init__(self, client: aioredis.Redis, guard: _Guard) -> None:
        self._redis = client
        self._guard = guard

    async def first_use(self, token: str, ttl_seconds: float) -> bool:
        return await self._guard.run(self._first_use(token, ttl_seconds), True)

    async def _first_use(self, token: str, ttl_seconds: float) -> bool:
        stored = await self._redis.set(
            _seen_key(token), b"1", nx=True, px=_milliseconds(ttl_seconds)
        )
        return bool(stored)


# All-or-nothing "first use" of several tokens: the 1-based index of the first one
# already spent (nothing set), else 0 with every token set for its own time to live.
_SPEND_TOKENS = """
for i, key in ipairs(KEYS) do
    if redis.call('exists', key) == 1 then return i end
end
for i, key in ipairs(KEYS) do
    redis.call('set', key, '1', 'PX', ARGV[i])
end
return 0
"""


class RedisLedger:
    """:class:`RequestLedger` in up to three round trips: the rate-limit test (signed or
    TOTP requests only), the tokens (one atomic script), the hit. Between the test and
    the hit another instance may fill the window: that request is then refused with its
    tokens spent, as if it had been refused a moment later."""

    def __init__(self, limiter: RedisRateLimiter, client: aioredis.Redis, guard: _Guard):
        self._limiter = limiter
        self._guard = guard
        self._spend_tokens = client.register_script(_SPEND_TOKENS)

    async def spend(
        self,
        tokens: tuple[tuple[str, float], ...],
        bucket: str | None = None,
        limit: int = 0,
        period_seconds: int = 0,
    ) -> Spent:
        passed = Spent(None, -1, None)
        if bucket is not None:
            passed = Spent(None, -1, RateDecision(True, limit, limit, period_seconds))
        return await self._guard.run(self._spend(tokens, bucket, limit, period_seconds), passed)

    async def _spend(
        self,
        tokens: tuple[tuple[str, float], ...],
        bucket: str | None,
        limit: int,
        period_seconds: int,
    ) -> Spent:
        if bucket is not None and tokens:
            wait = await self._limiter.wait(bucket, limit, period_seconds)
            if wait:
                return Spent("rate", -1, RateDecision(False, limit, 0, wait))
        if tokens:
            keys = [_seen_key(token) for token, _ in tokens]
            ttls = [_milliseconds(ttl) for _, ttl in tokens]
            first_spent = int(await self._spend_tokens(keys=keys, args=ttls))
            if first_spent:
                return Spent("replayed", first_spent - 1, None)
        if bucket is None:
            return Spent(None, -1, None)
        decision = await self._limiter.count(bucket, limit, period_seconds)
        return Spent(None if decision.allowed else "rate", -1, decision)


class RedisVault:
    """Open failure passes only what can pass: counts read 0 (no throttle) and a value
    put is lost, so taking or peeking finds nothing (what needed it is refused)."""

    def __init__(self, client: aioredis.Redis, guard: _Guard) -> None:
        self._redis = client
        self._guard = guard

    async def put(self, name: str, value: str, ttl_seconds: float) -> None:
        call = self._redis.set(
            f"{PREFIX}:vault:{name}", value.encode(), px=_milliseconds(ttl_seconds)
        )
        await self._guard.run(call, None)

    async def take(self, name: str) -> str | None:
        # GETDEL is atomic: one taker.
        found = await self._guard.run(self._redis.getdel(f"{PREFIX}:vault:{name}"), None)
        return None if found is None else _text(found)

    async def peek(self, name: str) -> str | None:
        found = await self._guard.run(self._redis.get(f"{PREFIX}:vault:{name}"), None)
        return None if found is None else _text(found)

    async def count(self, name: str, ttl_seconds: float) -> int:
        return await self._guard.run(self._count(name, ttl_seconds), 0)

    async def _count(self, name: str, ttl_seconds: float) -> int:
        key = f"{PREFIX}:vault:{name}"
        async with self._redis.pipeline(transaction=True) as pipe:  # MULTI/EXEC
            pipe.incr(key)
            pipe.pexpire(key, _milliseconds(ttl_seconds))
            value, _ = await pipe.execute()
        return int(value)


class RedisCacheBus:
    """Key invalidations over Redis pub/sub; an instance ignores its own messages."""

    def __init__(self, client: aioredis.Redis, timeout: float = 2.0) -> None:
        self._redis = client
        self._timeout = timeout
        self._origin = secrets.token_hex(8)
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def publish(self, key_id: str) -> None:
        # Bounded: the runtime waits for publications on shutdown. One that fails is
        # logged there; other instances drop the key when their cache TTL runs out.
        async with asyncio.timeout(self._timeout):
            await self._redis.publish(CHANNEL, f"{self._origin} {key_id}")

    async def start(self, on_invalidate: Callable[[str], None]) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._listen(on_invalidate), name="keyguard-bus")
            # Subscribed before start() returns: no change made after it can be missed.
            # A Redis that does not answer does not hold the start up: the listener goes
            # on trying, and until it is subscribed the cache TTL bounds staleness.
            ready = asyncio.create_task(self._ready.wait())
            await asyncio.wait(
                [ready, self._task], timeout=self._timeout, return_when=asyncio.FIRST_COMPLETED
            )
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


def redis_state(
    url: str, *, failure: FailurePolicy = "closed", timeout: float = 2.0
) -> StateStores:
    """The stores on one Redis connection pool; ``failure`` and ``timeout``: see
    :class:`_Guard` (KEYGUARD_STATE_FAILURE, KEYGUARD_STATE_TIMEOUT_SECONDS)."""
    client = aioredis.Redis.from_url(url)
    guard = _Guard(failure, timeout)
    bus = RedisCacheBus(client, timeout)

    async def close() -> None:
        await bus.close()
        await client.aclose()

    async def ready() -> None:
        # Readiness asks whatever the failure policy: raises when Redis does not answer.
        async with asyncio.timeout(timeout):
            await client.ping()

    limiter = RedisRateLimiter(url, client, guard)
    return StateStores(
        rate_limiter=limiter,
        replay_guard=RedisReplayGuard(client, guard),
        ledger=RedisLedger(limiter, client, guard),
        cache_bus=bus,
        vault=RedisVault(client, guard),
        close=close,
        ready=ready,
    )
