"""Failed sign-ins and codes, throttled per account and per IP (ASVS V2.2.1).

- **Per account** (keyed by the normalised email, so an unknown email is throttled
  exactly like a known one and the answers reveal nothing): after ``BACKOFF_AFTER``
  failures in a row each next attempt must wait twice as long as the last (1 s, 2 s,
  4 s … up to a minute); ``LOCK_AFTER`` failures in a row lock the account for
  ``LOCK_WINDOW`` after the last one, and its owner gets one email about it. A success
  clears the count.
- Those counts are read, then written, so guesses sent in parallel could all read the
  same count; an atomic counter bounds that race: every attempt is counted *before* the
  password is hashed, at most ``RACE_BOUND`` per ``LOCK_WINDOW``.
- **Per IP**: only failures count (an office behind one NAT address is never locked out
  by its own successful sign-ins); past ``IP_FAILURES`` in its window every sign-in from
  that address waits, whichever account it names (password spraying).

State lives in the state stores, so limits hold across instances with Redis.
"""

from __future__ import annotations

import json
import math

from keyguard.clock import Clock
from keyguard.errors import RateLimited
from keyguard.state.protocols import StateStores

BACKOFF_AFTER = 3
MAX_BACKOFF = 60
LOCK_AFTER = 10
LOCK_WINDOW = 15 * 60
RACE_BOUND = 2 * LOCK_AFTER
IP_FAILURES = (50, 15 * 60)


def _backoff(failures: int) -> int:
    if failures < BACKOFF_AFTER:
        return 0
    return int(min(MAX_BACKOFF, 2 ** (failures - BACKOFF_AFTER)))


class SignInThrottle:
    def __init__(self, state: StateStores, clock: Clock, *, what: str = "signin") -> None:
        self._limiter = state.rate_limiter
        self._vault = state.vault
        self._clock = clock
        self._what = what  # "signin" (passwords) or "code" (second factors)

    def _account(self, subject: str) -> str:
        return f"{self._what}:acct:{subject}"

    async def _failures(self, subject: str) -> tuple[int, float]:
        state = await self._vault.peek(f"{self._account(subject)}:failures")
        if not state:
            return 0, 0.0
        failures, last = json.loads(state)
        return int(failures), float(last)

    async def admit_address(self, ip: str) -> None:
        """Raise ``RateLimited`` while ``ip`` has failed too often (for attempts that name
        no account, such as a passkey's)."""
        limit, period = IP_FAILURES
        wait = await self._limiter.blocked(f"{self._what}:ip:{ip}", limit, period)
        if wait:
            raise RateLimited("Too many failed attempts from this address", retry_after=wait)

    async def failed_address(self, ip: str) -> None:
        limit, period = IP_FAILURES
        await self._limiter.hit(f"{self._what}:ip:{ip}", limit, period)

    async def admit(self, subject: str, ip: str) -> None:
        """Raise ``RateLimited`` unless an attempt for ``subject`` from ``ip`` may be
        checked now."""
        await self.admit_address(ip)
        failures, last = await self._failures(subject)
        now = self._clock.now()
        if failures >= LOCK_AFTER:
            wait = math.ceil(last + LOCK_WINDOW - now)
            if wait > 0:
                raise RateLimited("This account is locked for a while", retry_after=wait)
        else:
            wait = math.ceil(last + _backoff(failures) - now)
            if wait > 0:
                raise RateLimited("Too many failed attempts: wait a moment", retry_after=wait)
        attempt = await self._limiter.hit(self._account(subject), RACE_BOUND, LOCK_WINDOW)
        if not attempt.allowed:
            raise RateLimited("Too many attempts", retry_after=attempt.reset_seconds)

    async def locked(self, subject: str) -> bool:
        """Whether the account is locked now (for the lock email and audit)."""
        failures, last = await self._failures(subject)
        return failures >= LOCK_AFTER and last + LOCK_WINDOW > self._clock.now()

    async def failed(self, subject: str, ip: str) -> None:
        await self.failed_address(ip)
        failures, _ = await self._failures(subject)
        # Read-then-write loses counts when failures finish together (Redis, several
        # instances). The atomic attempt counter of ``admit`` counted every attempt
        # since the last success, so the failure count never falls below it.
        attempts = await self._limiter.peek(self._account(subject), RACE_BOUND, LOCK_WINDOW)
        failures = max(failures + 1, RACE_BOUND - attempts.remaining)
        state = json.dumps([failures, self._clock.now()])
        await self._vault.put(f"{self._account(subject)}:failures", state, LOCK_WINDOW)

    async def succeeded(self, subject: str) -> None:
        await self._limiter.reset(self._account(subject), RACE_BOUND, LOCK_WINDOW)
        await self._vault.take(f"{self._account(subject)}:failures")
