"""Without Redis, processes sharing a database learn of key changes by polling it."""

from __future__ import annotations

import pytest

from keyguard.clock import utc_from_ts
from keyguard.engine.facts import Credentials, RequestFacts
from keyguard.errors import KeyRevoked
from keyguard.keys.service import KeySpec, create_key, revoke_key
from keyguard.runtime import Runtime
from keyguard.state.polling import PollingCacheBus


async def test_a_revocation_in_one_process_reaches_another_sharing_the_database(
    settings, clock, runtime, admin
):
    other = await Runtime.start(settings, clock=clock)  # e.g. `keyguard gateway` beside `serve`
    try:
        bus = other.state.cache_bus
        assert isinstance(bus, PollingCacheBus)
        # Stop its background poller (every 1 s of real time): a tick after the revocation
        # would make the stale verify below fail. The test polls by hand instead.
        await bus.close()
        created = await create_key(
            runtime, admin.project.project.id, KeySpec(name="shared"), actor="test"
        )
        credentials = Credentials(created.issued.id, created.issued.secret)
        await other.engine.verify(credentials, RequestFacts())  # now cached in `other`
        before = utc_from_ts(clock.now())
        clock.advance(1)
        await revoke_key(runtime, created.issued.id, actor="test")
        await other.engine.verify(credentials, RequestFacts())  # stale until the next poll
        await bus.poll_once(other.cache.forget, before)
        with pytest.raises(KeyRevoked):
            await other.engine.verify(credentials, RequestFacts())
    finally:
        await other.close()


async def test_each_change_is_forgotten_once(clock):
    when = utc_from_ts(clock.now())

    async def changed(_since):
        return [("k1", when)]

    forgotten: list[str] = []
    bus = PollingCacheBus(changed, clock)
    since = await bus.poll_once(forgotten.append, when)
    await bus.poll_once(forgotten.append, since)
    assert forgotten == ["k1"]
