"""In-process state for the embedded mode (one process)."""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable

from limits import RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from keyguard.clock import Clock
from keyguard.state.protocols import RateDecision, StateStores


class MemoryRateLimiter:
    """Sliding-window counters from the ``limits`` library, in memory."""

    def __init__(self) -> None:
        self._limiter = SlidingWindowCounterRateLimiter(MemoryStorage())

    async def hit(self, bucket: str, limit: int, period_seconds: int) -> RateDecision:
        item = RateLimitItemPerSecond(limit, period_seconds)
        allowed = await self._limiter.hit(item, bucket)
        stats = await self._limiter.get_window_stats(item, bucket)
        reset = max(1, math.ceil(stats.reset_time - time.time()))
        return RateDecision(allowed, limit, max(0, stats.remaining), reset)

    async def reset(self, bucket: str, limit: int, period_seconds: int) -> None:
        await self._limiter.clear(RateLimitItemPerSecond(limit, period_seconds), bucket)


class MemoryReplayGuard:
    """Seen tokens with expiry; a heap drops expired ones so memory stays bounded."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._seen: dict[str, float] = {}
        self._expiry: list[tuple[float, str]] = []

    async def first_use(self, token: str, ttl_seconds: float) -> bool:
        now = self._clock.now()
        while self._expiry and self._expiry[0][0] <= now:
            _, old = heapq.heappop(self._expiry)
            if self._seen.get(old, math.inf) <= now:
                del self._seen[old]
        if self._seen.get(token, 0.0) > now:
            return False
        until = now + ttl_seconds
        self._seen[token] = until
        heapq.heappush(self._expiry, (until, token))
        return True


class LocalCacheBus:
    """One process: invalidation already happened locally, nothing to broadcast."""

    async def publish(self, key_id: str) -> None:
        return None

    async def start(self, on_invalidate: Callable[[str], None]) -> None:
        return None

    async def close(self) -> None:
        return None


def memory_state(clock: Clock) -> StateStores:
    return StateStores(
        rate_limiter=MemoryRateLimiter(),
        replay_guard=MemoryReplayGuard(clock),
        cache_bus=LocalCacheBus(),
    )
