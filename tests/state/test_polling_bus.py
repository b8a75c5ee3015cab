"""Without Redis, processes sharing a database learn of key changes by polling it, in the
order changes commit."""

from __future__ import annotations

import pytest

from keyguard.engine.facts import Credentials, RequestFacts
from keyguard.errors import KeyRevoked
from keyguard.keys.repository import change_position
from keyguard.keys.service import KeySpec, create_key, revoke_key
from keyguard.runtime import Runtime
from keyguard.state.polling import PollingCacheBus


async def _other(settings, clock) -> tuple[Runtime, PollingCacheBus]:
    other = await Runtime.start(settings, clock=clock)  # e.g. `keyguard gateway` beside `serve`
    bus = other.state.cache_bus
    assert isinstance(bus, PollingCacheBus)
    # Stop its background poller (every 1 s of real time): the test polls by hand.
    await bus.close()
    return other, bus


async def test_a_revocation_in_one_process_reaches_another_sharing_the_database(
    settings, clock, runtime, admin
):
    other, bus = await _other(settings, clock)
    try:
        created = await create_key(
            runtime, admin.project.project.id, KeySpec(name="shared"), actor="test"
        )
        credentials = Credentials(created.issued.id, created.issued.secret)
        await other.engine.verify(credentials, RequestFacts())  # now cached in `other`
        before = await change_position(other.sessions)
        clock.advance(1)
        await revoke_key(runtime, created.issued.id, actor="test")
        await other.engine.verify(credentials, RequestFacts())  # stale until the next poll
        await bus.poll_once(other.cache.forget, before)
        with pytest.raises(KeyRevoked):
            await other.engine.verify(credentials, RequestFacts())
    finally:
        await other.close()


async def test_a_change_stamped_long_before_it_commits_is_still_seen(
    settings, clock, runtime, admin
):
    """Issue 10, defect 9: the poller read ``updated_at`` (the application clock) with a
    5 s overlap, so a revocation committing later than that after its timestamp was
    missed until the cache TTL. Positions in the change sequence follow commit order."""
    other, bus = await _other(settings, clock)
    try:
        created = await create_key(
            runtime, admin.project.project.id, KeySpec(name="slow"), actor="test"
        )
        credentials = Credentials(created.issued.id, created.issued.secret)
        await other.engine.verify(credentials, RequestFacts())
        position = await bus.poll_once(other.cache.forget, await change_position(other.sessions))
        clock.advance(-60)  # the revocation's timestamp: a minute before it commits
        await revoke_key(runtime, created.issued.id, actor="test")
        clock.advance(60)
        await bus.poll_once(other.cache.forget, position)
        with pytest.raises(KeyRevoked):
            await other.engine.verify(credentials, RequestFacts())
    finally:
        await other.close()


async def test_each_key_is_forgotten_once_per_poll_and_the_position_moves(clock):
    async def changes_after(after: int) -> tuple[list[str], int]:
        return (["k1", "k2", "k1"], after + 3) if after < 3 else ([], after)

    async def position() -> int:
        return 0

    forgotten: list[str] = []
    bus = PollingCacheBus(changes_after, position, clock)
    after = await bus.poll_once(forgotten.append, 0)
    assert after == 3
    assert await bus.poll_once(forgotten.append, after) == 3
    assert forgotten == ["k1", "k2"]
