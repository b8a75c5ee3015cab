"""TOTP on a key, with its two pieces of state: the failure throttle and used steps.

One copy of the rules, used by the policy engine for every request and by the TOTP
confirmation of the management API.
"""

from __future__ import annotations

from keyguard.clock import Clock
from keyguard.crypto.totp import TotpKey
from keyguard.errors import RateLimited, TotpInvalid
from keyguard.state.protocols import StateStores

# A TOTP step matches while now is within one step of it: remember it for longer.
TOTP_STEP_TTL = 4 * 30
# Wrong TOTP codes per key before 429: 5 per minute, so guessing 1 of 10**6 codes (3
# steps valid at once) takes months, while a fumbling human is barely slowed.
TOTP_FAILURES = (5, 60)


class TotpGuard:
    def __init__(
        self, state: StateStores, clock: Clock, *, failures: tuple[int, int] = TOTP_FAILURES
    ) -> None:
        self._limiter = state.rate_limiter
        self._replay = state.replay_guard
        self._clock = clock
        self._failures = failures

    async def match(self, key_id: str, totp: TotpKey, code: str) -> int:
        """The matched time step; ``TotpInvalid`` (counted) or ``RateLimited`` otherwise."""
        limit, period = self._failures
        bucket = f"totp-fail:{key_id}"
        wait = await self._limiter.blocked(bucket, limit, period)
        if wait:
            # Throttled before the code is even looked at: guessing gains nothing.
            raise RateLimited("Too many wrong TOTP codes", limit=limit, retry_after=wait)
        try:
            return totp.match(code, self._clock.now())
        except TotpInvalid:
            await self._limiter.hit(bucket, limit, period)
            raise

    async def claim(self, key_id: str, totp: TotpKey, step: int) -> None:
        """Spend ``step`` of ``totp``'s secret: each code is accepted once (``TotpInvalid``
        after), across every key sharing the secret (a rotated pair); failures count
        against ``key_id``."""
        token, ttl = step_token(totp, step)
        if not await self._replay.first_use(token, ttl):
            await self.refuse_replay(key_id)

    async def refuse_replay(self, key_id: str) -> None:
        """A code whose step was already spent: counted as a failure, ``TotpInvalid``."""
        limit, period = self._failures
        await self._limiter.hit(f"totp-fail:{key_id}", limit, period)
        raise TotpInvalid()


def step_token(totp: TotpKey, step: int) -> tuple[str, float]:
    """The replay token spending ``step`` of ``totp``'s secret, and its time to live."""
    return f"totp:{totp.secret_id}:{step}", TOTP_STEP_TTL
