"""Two instances on one database and one Redis act as one service (CONTRACT §1)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from keyguard.accounts.service import InitResult, init_admin
from keyguard.clock import FrozenClock
from keyguard.crypto.request_signing import compute_signature
from keyguard.crypto.totp import totp_code
from keyguard.engine.facts import Credentials, RequestFacts
from keyguard.errors import KeyguardError, KeyRevoked, RateLimited, SignatureReplayed, TotpInvalid
from keyguard.keys import service as keys
from keyguard.restrictions import service as restrictions
from keyguard.runtime import Runtime
from keyguard.settings import Settings

pytestmark = pytest.mark.redis


class Pair:
    def __init__(self, a: Runtime, b: Runtime, init: InitResult, clock: FrozenClock) -> None:
        self.a, self.b, self.init, self.clock = a, b, init, clock

    async def key(self, **spec) -> tuple[str, str]:
        spec.setdefault("name", "shared")
        created = await keys.create_key(
            self.a, self.init.project.project.id, keys.KeySpec(**spec), actor="test"
        )
        return created.issued.id, created.issued.secret


@pytest.fixture
async def pair(settings: Settings, redis_url: str) -> AsyncIterator[Pair]:
    shared = settings.model_copy(update={"redis_url": redis_url})
    clock = FrozenClock()
    a = await Runtime.start(shared, clock=clock)
    b = await Runtime.start(shared, clock=clock)
    try:
        init = await init_admin(a, email="multi@example.com", password="multi-password-1")
        yield Pair(a, b, init, clock)
    finally:
        await a.close()
        await b.close()


async def _refused_soon(rt: Runtime, creds: Credentials, error: type[KeyguardError]) -> None:
    """The bus delivers within milliseconds; allow it a bounded moment, no fixed sleep."""
    for _ in range(500):
        try:
            await rt.engine.verify(creds, RequestFacts())
        except error:
            return
        await asyncio.sleep(0.01)
    pytest.fail(f"{error.__name__} never took effect on the other instance")


async def test_a_revocation_on_one_instance_holds_on_the_other(pair: Pair) -> None:
    creds = Credentials(*await pair.key())
    await pair.b.engine.verify(creds, RequestFacts())  # now cached on B
    await keys.revoke_key(pair.a, creds.key_id, actor="test")
    await _refused_soon(pair.b, creds, KeyRevoked)


async def test_rate_limits_are_global(pair: Pair) -> None:
    # A day-long window: Redis windows run on real time, and a boundary between the hits
    # would make the counts fractional.
    creds = Credentials(*await pair.key(rate_limit=(2, 86_400)))
    await pair.a.engine.verify(creds, RequestFacts())
    status = (await pair.b.engine.verify(creds, RequestFacts())).ratelimit
    assert status is not None
    assert status.remaining == 0
    with pytest.raises(RateLimited):
        await pair.a.engine.verify(creds, RequestFacts())


async def test_signatures_and_totp_codes_are_accepted_once_across_instances(pair: Pair) -> None:
    key_id, _ = await pair.key()
    secret = await restrictions.set_signing_secret(pair.a, key_id, actor="test")
    enrolment = await restrictions.start_totp(pair.a, key_id, actor="test")
    now = pair.clock.now()
    await restrictions.confirm_totp(pair.a, key_id, totp_code(enrolment.secret, now), actor="test")

    def facts(totp_steps: int, ts_offset: int) -> RequestFacts:
        ts = str(int(now) + ts_offset)  # another timestamp: another signature
        return RequestFacts(
            method="GET",
            path_with_query="/x",
            body=b"",
            timestamp=ts,
            signature=compute_signature(secret, "GET", "/x", b"", ts),
            totp=totp_code(enrolment.secret, now + 30 * totp_steps),
        )

    creds = Credentials(key_id, None)
    # The confirmation code (this step) was spent on A: B refuses it.
    with pytest.raises(TotpInvalid):
        await pair.b.engine.verify(creds, facts(0, ts_offset=0))
    await pair.a.engine.verify(creds, facts(1, ts_offset=1))
    with pytest.raises(SignatureReplayed):
        await pair.b.engine.verify(creds, facts(1, ts_offset=1))
    with pytest.raises(TotpInvalid):  # a fresh signature, but a TOTP code already used on A
        await pair.b.engine.verify(creds, facts(1, ts_offset=2))
