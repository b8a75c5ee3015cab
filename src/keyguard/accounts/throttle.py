"""Failed sign-ins and codes, throttled per account and per IP (ASVS V2.2.1).

- **Per account** (keyed by the normalised email, so an unknown email is throttled
  exactly like a known one and the answers reveal nothing): after ``BACKOFF_AFTER``
  failures in a row each next attempt must wait twice as long as the last (1 s, 2 s,
  4 s … up to a minute); ``LOCK_AFTER`` failures in a row lock the account for
  ``LOCK_WINDOW`` after the last one, and its owner gets one email about it. A success
  clears the count.
- Failures are counted atomically (the vault's ``count``), so failures finishing
  together are all counted. Guesses sent in parallel are all *admitted* before any of
  them fails, though; a second atomic counter bounds that race: every attempt is counted
  before the password is hashed, at most ``RACE_BOUND`` per ``LOCK_WINDOW``.
- Failures are remembered ``MEMORY`` after the last one ("in a row" means none further
  apart); the first attempt after a lock has run its course starts from zero.
- **Per IP**: only failures count (an office behind one NAT address is never locked out
  by its own successful sign-ins); past ``IP_FAILURES`` in its window every sign-in from
  that address waits, whichever account it names (password spraying).

State lives in the state stores, so limits hold across instances with Redis.
"""

from __future__ import annotations

import ipaddress
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
# How long failures are remembered after the last one: past a whole lock, so the end of
# a lock is seen (and resets every count) rather than forgotten.
MEMORY = 2 * LOCK_WINDOW


def address_key(ip: str) -> str:
    """What per-IP limits count against: the IPv4 address, or the IPv6 /64 (one host is
    usually handed a whole /64, and could otherwise take a fresh address per attempt)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


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
        """Failures in a row, and when the last one was."""
        name = self._account(subject)
        count, last = (
            await self._vault.peek(f"{name}:failures"),
            await self._vault.peek(f"{name}:last"),
        )
        return int(count or 0), float(last or 0.0)

    async def admit_address(self, ip: str) -> None:
        """Raise ``RateLimited`` while ``ip`` has failed too often (for attempts that name
        no account, such as a passkey's)."""
        limit, period = IP_FAILURES
        wait = await self._limiter.blocked(f"{self._what}:ip:{address_key(ip)}", limit, period)
        if wait:
            raise RateLimited("Too many failed attempts from this address", retry_after=wait)

    async def failed_address(self, ip: str) -> None:
        limit, period = IP_FAILURES
        await self._limiter.hit(f"{self._what}:ip:{address_key(ip)}", limit, period)

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
            # The lock was served: start counting afresh, so one typo after it is one
            # failure (the sliding attempt counter still remembers the burst).
            await self.succeeded(subject)
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
        name = self._account(subject)
        # When, before how many: a reader that sees the tenth failure must also see a
        # recent "last", or it takes the lock for one long served (last = 0), resets the
        # counters and the race bound, and lets the rest of a burst through (a clean-clone
        # run checked 35 passwords of 60 sent at once, where the bound is 20).
        await self._vault.put(f"{name}:last", repr(self._clock.now()), MEMORY)
        # Counted atomically: failures finishing together (several instances, Redis) are
        # all counted. Kept past the lock, so the end of a lock is seen and resets.
        await self._vault.count(f"{name}:failures", MEMORY)

    async def succeeded(self, subject: str) -> None:
        await self._limiter.reset(self._account(subject), RACE_BOUND, LOCK_WINDOW)
        await self._vault.take(f"{self._account(subject)}:failures")
        await self._vault.take(f"{self._account(subject)}:last")
