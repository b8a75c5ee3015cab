"""In-process state for the embedded mode (one process).

The rate limiter is the sliding-window-counter algorithm of the ``limits`` library (the
one the Redis backend runs, in Lua, through ``limits``), re-implemented on a plain dict:
``limits``' async in-memory storage costs ~13 µs per hit plus its window stats (locks,
timers), more than every other per-key check together, and it reads ``time.time()``
where ours reads the injected clock, so tests move windows without sleeping.

Its rule is ``limits``' exactly, so both backends decide and report alike: a hit is
allowed while ``floor(weighted) + 1 <= limit`` (i.e. ``weighted < limit``), and
``remaining`` is ``limit - floor(weighted)`` (at least 0), which is > 0 exactly when the
next hit would be allowed.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from keyguard.clock import Clock
from keyguard.state.protocols import RateDecision, Spent, StateStores


def _retry_after(limit: int, period: int, elapsed: float, prev: int, cur: int) -> int:
    """Whole seconds until ``prev * (1 - e/period) + cur < limit`` (one more hit fits)."""
    if cur >= limit:
        if cur == 0:  # a limit of 0 admits nothing, ever
            return period
        # Not before the next window, where this window's count becomes the weighted one.
        boundary = (period - elapsed) + period * (1 - limit / cur)
    elif prev:
        boundary = period * (1 - (limit - cur) / prev) - elapsed
    else:
        return 1  # a hit fits now (not reached: callers ask only when one does not)
    # Strictly after the boundary: at it the weighted count is exactly ``limit``. (The
    # epsilon keeps a boundary that is a whole second, computed a hair short, from
    # rounding to that very second.)
    return max(1, math.floor(boundary + 1e-9) + 1)


class MemoryRateLimiter:
    """Sliding window counter: the previous fixed window's count, weighted by how much
    of it still overlaps the sliding window, plus the current window's count."""

    _SWEEP_EVERY = 4096

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        # bucket -> [window index, previous window's count, current window's count, period]
        self._buckets: dict[str, list[int]] = {}
        self._hits = 0

    def window(self, bucket: str, period: int, now: float) -> tuple[list[int], float, int]:
        """The bucket's state (made if new), the time into its current window, and what
        the sliding window counts now (the previous window's count weighted by how much
        of it still overlaps, plus the current window's)."""
        index = int(now // period)
        state = self._buckets.get(bucket)
        if state is None:
            state = self._buckets[bucket] = [index, 0, 0, period]
        elif state[0] != index:
            # Roll over: the current window becomes the previous one (or both are stale).
            state[1] = state[2] if state[0] == index - 1 else 0
            state[2] = 0
            state[0] = index
        elapsed = now - index * period
        return state, elapsed, math.floor(state[1] * (period - elapsed) / period + state[2])

    async def hit(self, bucket: str, limit: int, period_seconds: int) -> RateDecision:
        now = self._clock.now()
        window = self.window(bucket, period_seconds, now)
        if window[2] + 1 <= limit:
            return self.count(window, limit, period_seconds, now)
        return self.refusal(window, limit, period_seconds)

    def count(
        self, window: tuple[list[int], float, int], limit: int, period_seconds: int, now: float
    ) -> RateDecision:
        """Count one request in a window that admits it (from :meth:`_window`)."""
        state, elapsed, counted = window
        state[2] += 1
        self._hits += 1
        if self._hits % self._SWEEP_EVERY == 0:
            self._sweep(now)
        # The window slides on: counts shrink from here.
        return RateDecision(True, limit, limit - counted - 1, _ceil(period_seconds - elapsed))

    def refusal(
        self, window: tuple[list[int], float, int], limit: int, period_seconds: int
    ) -> RateDecision:
        """The decision for a window that admits no request now."""
        state, elapsed, counted = window
        wait = _retry_after(limit, period_seconds, elapsed, state[1], state[2])
        return RateDecision(False, limit, max(0, limit - counted), wait)

    async def blocked(self, bucket: str, limit: int, period_seconds: int) -> int:
        if bucket not in self._buckets:
            # Nothing counted (the common case: every TOTP check asks first): answered
            # without building a decision.
            return 0 if limit > 0 else period_seconds
        state, elapsed, counted = self.window(bucket, period_seconds, self._clock.now())
        if counted + 1 <= limit:
            return 0
        return _retry_after(limit, period_seconds, elapsed, state[1], state[2])

    async def peek(self, bucket: str, limit: int, period_seconds: int) -> RateDecision:
        if bucket not in self._buckets:  # no bucket is created just for looking
            return RateDecision(limit > 0, limit, max(0, limit), period_seconds)
        state, elapsed, counted = self.window(bucket, period_seconds, self._clock.now())
        if counted + 1 <= limit:
            return RateDecision(True, limit, limit - counted, _ceil(period_seconds - elapsed))
        wait = _retry_after(limit, period_seconds, elapsed, state[1], state[2])
        return RateDecision(False, limit, 0, wait)

    async def reset(self, bucket: str, limit: int, period_seconds: int) -> None:
        self._buckets.pop(bucket, None)

    def _sweep(self, now: float) -> None:
        # A bucket untouched for two whole windows counts nothing any more.
        stale = [
            b for b, (index, _, _, period) in self._buckets.items() if index + 2 <= now / period
        ]
        for bucket in stale:
            del self._buckets[bucket]


def _ceil(seconds: float) -> int:
    return max(1, math.ceil(seconds))


class MemoryReplayGuard:
    """Seen tokens with their expiry. Expired ones are swept whenever the table has
    doubled since the last sweep: memory stays within twice the live tokens, and a
    check is two dictionary operations (a heap of expiries cost more per check)."""

    _MIN_SWEEP = 1024

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._seen: dict[str, float] = {}
        self._sweep_at = self._MIN_SWEEP

    async def first_use(self, token: str, ttl_seconds: float) -> bool:
        now = self._clock.now()
        if self.spent(token, now):
            return False
        self.spend(token, ttl_seconds, now)
        return True

    def spent(self, token: str, now: float) -> bool:
        return self._seen.get(token, 0.0) > now

    def spend(self, token: str, ttl_seconds: float, now: float) -> None:
        self._seen[token] = now + ttl_seconds
        if len(self._seen) >= self._sweep_at:
            self._seen = {t: until for t, until in self._seen.items() if until > now}
            self._sweep_at = max(self._MIN_SWEEP, 2 * len(self._seen))


_ALLOWED = Spent(None, -1, None)


class MemoryLedger:
    """:class:`RequestLedger` on the two stores above, in one synchronous step (nothing
    can interleave, so it is atomic)."""

    def __init__(self, limiter: MemoryRateLimiter, replay: MemoryReplayGuard, clock: Clock):
        self._limiter = limiter
        self._replay = replay
        self._clock = clock

    async def spend(
        self,
        tokens: tuple[tuple[str, float], ...],
        bucket: str | None = None,
        limit: int = 0,
        period_seconds: int = 0,
    ) -> Spent:
        now = self._clock.now()
        window = None
        if bucket is not None:
            window = self._limiter.window(bucket, period_seconds, now)
            if window[2] + 1 > limit:
                return Spent("rate", -1, self._limiter.refusal(window, limit, period_seconds))
        replay = self._replay
        for index, (token, _) in enumerate(tokens):
            if replay.spent(token, now):
                return Spent("replayed", index, None)
        for token, ttl in tokens:
            replay.spend(token, ttl, now)
        if window is None:
            return _ALLOWED
        return Spent(None, -1, self._limiter.count(window, limit, period_seconds, now))


class MemoryVault:
    """Values with expiry in one process (expired ones are dropped as they are met)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._values: dict[str, tuple[float, str]] = {}

    def _sweep(self, now: float) -> None:
        if len(self._values) > 1024:  # bounded: drop what expired once in a while
            for name in [n for n, (until, _) in self._values.items() if until <= now]:
                del self._values[name]

    async def put(self, name: str, value: str, ttl_seconds: float) -> None:
        now = self._clock.now()
        self._sweep(now)
        self._values[name] = (now + ttl_seconds, value)

    async def take(self, name: str) -> str | None:
        found = self._values.pop(name, None)
        if found is None or found[0] <= self._clock.now():
            return None
        return found[1]

    async def peek(self, name: str) -> str | None:
        found = self._values.get(name)
        if found is None or found[0] <= self._clock.now():
            return None
        return found[1]

    async def count(self, name: str, ttl_seconds: float) -> int:
        value = int(await self.peek(name) or 0) + 1
        await self.put(name, str(value), ttl_seconds)
        return value


class LocalCacheBus:
    """One process: invalidation already happened locally, nothing to broadcast."""

    async def publish(self, key_id: str) -> None:
        return None

    async def start(self, on_invalidate: Callable[[str], None]) -> None:
        return None

    async def close(self) -> None:
        return None


def memory_state(clock: Clock) -> StateStores:
    limiter = MemoryRateLimiter(clock)
    replay = MemoryReplayGuard(clock)
    return StateStores(
        rate_limiter=limiter,
        replay_guard=replay,
        ledger=MemoryLedger(limiter, replay, clock),
        cache_bus=LocalCacheBus(),
        vault=MemoryVault(clock),
    )
