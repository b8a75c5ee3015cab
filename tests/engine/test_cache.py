from __future__ import annotations

import asyncio

from keyguard.clock import FrozenClock
from keyguard.engine.cache import KeyCache
from keyguard.engine.records import KeyRecord

RECORD = KeyRecord(id="k", project_id="p", environment="live", secret_hash=b"", scopes=frozenset())


async def test_concurrent_misses_share_one_load():
    calls = 0
    gate = asyncio.Event()

    async def loader(key_id: str) -> KeyRecord | None:
        nonlocal calls
        calls += 1
        await gate.wait()
        return RECORD

    cache = KeyCache(loader, FrozenClock())
    tasks = [asyncio.create_task(cache.get("k")) for _ in range(10)]
    await asyncio.sleep(0)
    gate.set()
    assert all(r is RECORD for r in await asyncio.gather(*tasks))
    assert calls == 1


async def test_entries_expire_after_the_ttl():
    calls = 0

    async def loader(key_id: str) -> KeyRecord | None:
        nonlocal calls
        calls += 1
        return RECORD

    clock = FrozenClock()
    cache = KeyCache(loader, clock, ttl=30)
    await cache.get("k")
    clock.advance(29)
    await cache.get("k")
    clock.advance(2)
    await cache.get("k")
    assert calls == 2


async def test_unknown_ids_are_cached_briefly_and_in_bounded_number():
    calls = 0

    async def loader(key_id: str) -> KeyRecord | None:
        nonlocal calls
        calls += 1
        return None

    clock = FrozenClock()
    cache = KeyCache(loader, clock, negative_ttl=5, max_negative=3)
    for key in "abcd":
        assert await cache.get(key) is None
    assert await cache.get("d") is None  # still cached
    assert await cache.get("a") is None  # evicted: loaded again
    assert calls == 5


async def test_an_invalidation_during_a_load_prevents_caching_the_stale_read():
    gate = asyncio.Event()

    async def loader(key_id: str) -> KeyRecord | None:
        await gate.wait()
        return RECORD

    cache = KeyCache(loader, FrozenClock())
    task = asyncio.create_task(cache.get("k"))
    await asyncio.sleep(0)
    cache.invalidate("k")
    gate.set()
    await task
    assert "k" not in cache._hits


async def test_a_get_after_an_invalidation_never_joins_a_load_that_began_before_it():
    """Issue 10, defect 8: a load that read the row before a revocation committed was
    shared with a get() made after the invalidation: the revoked key passed once."""
    revoked = KeyRecord(
        id="k", project_id="p", environment="live", secret_hash=b"", scopes=frozenset(),
        revoked=True,
    )  # fmt: skip
    database = {"k": RECORD}
    first_read = asyncio.Event()
    release = asyncio.Event()

    async def loader(key_id: str) -> KeyRecord | None:
        seen = database[key_id]
        if not first_read.is_set():
            first_read.set()
            await release.wait()  # a slow first read, holding what it read
        return seen

    cache = KeyCache(loader, FrozenClock())
    before = asyncio.create_task(cache.get("k"))
    await first_read.wait()
    database["k"] = revoked  # the revocation commits...
    cache.invalidate("k")  # ...then invalidates
    after = asyncio.create_task(cache.get("k"))
    await asyncio.sleep(0)
    release.set()
    assert (await after).revoked is True
    assert (await before) is RECORD  # it began before the revocation: it read before it
    assert (await cache.get("k")).revoked is True  # nothing stale was cached


async def test_peek_never_loads_and_sees_only_fresh_entries():
    calls = 0

    async def loader(key_id: str) -> KeyRecord | None:
        nonlocal calls
        calls += 1
        return RECORD if key_id == "k" else None

    clock = FrozenClock()
    cache = KeyCache(loader, clock, ttl=30)
    assert cache.peek("k") is None
    assert calls == 0
    await cache.get("k")
    await cache.get("unknown")
    assert cache.peek("k") is RECORD
    assert cache.peek("unknown") is None  # a negative entry is no value
    clock.advance(31)
    assert cache.peek("k") is None
    await cache.get("k")
    cache.invalidate("k")
    assert cache.peek("k") is None
    assert calls == 3
