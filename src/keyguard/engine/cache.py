"""In-memory read-through caches; the key cache in front of the repository.

Every change to a key calls ``invalidate`` (and publishes it on the cache bus so other
instances drop it too), so a revocation takes effect on the next request. The TTL is a
safety net for instances that missed a message; negative entries (unknown ids) are cached
briefly and in bounded number. Forged ids never get here: the engine refuses an id whose
keyed tag is wrong before the cache (``PolicyEngine.lookup``), so only ids Keyguard issued
can cost a look-up.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from keyguard.clock import Clock
from keyguard.engine.records import KeyRecord

T = TypeVar("T")


class ReadThroughCache(Generic[T]):
    """id -> immutable value, loaded on a miss (single flight), with TTLs and size bounds."""

    def __init__(
        self,
        loader: Callable[[str], Awaitable[T | None]],
        clock: Clock,
        *,
        ttl: float = 30.0,
        negative_ttl: float = 5.0,
        max_entries: int = 100_000,
        max_negative: int = 10_000,
    ) -> None:
        self._loader = loader
        self._clock = clock
        self._ttl = ttl
        self._negative_ttl = negative_ttl
        self._max_entries = max_entries
        self._max_negative = max_negative
        self._hits: dict[str, tuple[T, float]] = {}
        self._misses: OrderedDict[str, float] = OrderedDict()
        self._loading: dict[str, asyncio.Future[T | None]] = {}
        self._generation = 0
        self.loads = 0  # look-ups that went to the loader (GET /metrics: the miss side)
        # Called with the key id on every invalidate() (not on forget()): the runtime
        # publishes it on the cache bus so that every other instance forgets the key too.
        self.on_invalidate: Callable[[str], None] | None = None

    def peek(self, key_id: str) -> T | None:
        """The cached value of ``key_id`` while fresh, else None; never loads."""
        hit = self._hits.get(key_id)
        if hit is not None and hit[1] > self._clock.now():
            return hit[0]
        return None

    async def get(self, key_id: str) -> T | None:
        now = self._clock.now()
        hit = self._hits.get(key_id)
        if hit is not None and hit[1] > now:
            return hit[0]
        miss_until = self._misses.get(key_id)
        if miss_until is not None and miss_until > now:
            return None
        return await self._load(key_id)

    async def _load(self, key_id: str) -> T | None:
        pending = self._loading.get(key_id)
        if pending is not None:  # single flight: concurrent misses share one query
            return await asyncio.shield(pending)
        future: asyncio.Future[T | None] = asyncio.get_running_loop().create_future()
        self._loading[key_id] = future
        self.loads += 1
        generation = self._generation
        try:
            record = await self._loader(key_id)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        finally:
            # Only our own entry: an invalidation may have dropped it, and a newer load
            # may have taken its place.
            if self._loading.get(key_id) is future:
                del self._loading[key_id]
        future.set_result(record)
        # An invalidation that raced with the load wins: don't cache a stale read.
        if generation == self._generation:
            now = self._clock.now()
            if record is None:
                self._misses[key_id] = now + self._negative_ttl
                while len(self._misses) > self._max_negative:
                    self._misses.popitem(last=False)
            else:
                if len(self._hits) >= self._max_entries:
                    # Oldest insertion first (dicts keep order): cheap and good enough.
                    del self._hits[next(iter(self._hits))]
                self._hits[key_id] = (record, now + self._ttl)
        return record

    def invalidate(self, key_id: str) -> None:
        """Drop ``key_id`` here and, through ``on_invalidate``, on every instance."""
        self.forget(key_id)
        if self.on_invalidate is not None:
            self.on_invalidate(key_id)

    def forget(self, key_id: str) -> None:
        """Drop ``key_id`` from this instance only (what a bus message does)."""
        self._generation += 1
        self._hits.pop(key_id, None)
        self._misses.pop(key_id, None)
        # A load already in flight may have read the row before the change committed: a
        # get() from now on must not join it (a revoked key would pass once), so it is
        # no longer shared; whoever joined it before the change gets what it read.
        self._loading.pop(key_id, None)

    def clear(self) -> None:
        self._generation += 1
        self._hits.clear()
        self._misses.clear()
        self._loading.clear()  # as in forget(): no get() joins a load older than this


class KeyCache(ReadThroughCache[KeyRecord]):
    """The key cache of the policy engine (see the module docstring)."""
