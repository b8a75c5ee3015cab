"""The small pieces of shared state the policy engine and services need.

Each has an in-process backend (embedded default) and a Redis backend (several
instances acting as one, ``KEYGUARD_REDIS_URL``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, NamedTuple, Protocol


class RateDecision(NamedTuple):
    """Immutable; a named tuple because one is made per rate-limited request (a third of
    the cost of a frozen dataclass)."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # until a request would be allowed again / the window frees up


class RateLimiter(Protocol):
    async def hit(self, bucket: str, limit: int, period_seconds: int) -> RateDecision:
        """Count one request in ``bucket`` (sliding window) and say whether it is allowed."""
        ...

    async def blocked(self, bucket: str, limit: int, period_seconds: int) -> int:
        """Seconds until ``bucket`` admits a request again (0: it would now); counts nothing."""
        ...

    async def peek(self, bucket: str, limit: int, period_seconds: int) -> RateDecision:
        """Where ``bucket`` stands, as :meth:`hit` would report it, counting nothing
        (for the ``RateLimit-*`` headers of a request refused by another check)."""
        ...

    async def reset(self, bucket: str, limit: int, period_seconds: int) -> None: ...


class ReplayGuard(Protocol):
    async def first_use(self, token: str, ttl_seconds: float) -> bool:
        """True exactly once per ``token`` within ``ttl_seconds`` (atomic across instances)."""
        ...


class Spent(NamedTuple):
    """What :meth:`RequestLedger.spend` decided for one request."""

    refused: Literal["rate", "replayed"] | None  # None: allowed, and everything spent
    replayed: int  # "replayed": the index of the first token already spent; else -1
    rate: RateDecision | None  # the bucket after this request (None without a bucket)


class RequestLedger(Protocol):
    """What an accepted request spends, in one call: the policy engine's only use of
    shared state on the hot path (a rate limit, a signature, a TOTP step: one call, and
    on Redis at most three round trips, instead of five calls)."""

    async def spend(
        self,
        tokens: tuple[tuple[str, float], ...],
        bucket: str | None = None,
        limit: int = 0,
        period_seconds: int = 0,
    ) -> Spent:
        """In this order, stopping at the first refusal:

        1. ``bucket`` (if any) admits no request now: ``"rate"``, its wait in
           ``rate.reset_seconds``, nothing spent (the client may retry the very same
           request later);
        2. a token (with its time to live) was spent before: ``"replayed"`` and its
           index, nothing spent (tokens are all-or-nothing, atomic across instances);
        3. every token is spent and one request counted in ``bucket``.
        """
        ...


class Vault(Protocol):
    """Short-lived values taken at most once: WebAuthn challenges, half-finished sign-ins.

    :meth:`take` reads and deletes in one step (atomic across instances), so a value
    can never be used twice, even by two requests racing each other.
    """

    async def put(self, name: str, value: str, ttl_seconds: float) -> None: ...

    async def take(self, name: str) -> str | None: ...

    async def peek(self, name: str) -> str | None:
        """The value, left in place (for a page that shows a pending step)."""
        ...

    async def count(self, name: str, ttl_seconds: float) -> int:
        """Add one to the counter ``name`` (made at 0) and return it, atomically across
        instances; the counter lives ``ttl_seconds`` from this call. :meth:`take` and
        :meth:`peek` read it as text."""
        ...


Invalidation = Callable[[str], Awaitable[None] | None]


class CacheBus(Protocol):
    """Tells every instance that a cached key changed."""

    async def publish(self, key_id: str) -> None: ...

    async def start(self, on_invalidate: Callable[[str], None]) -> None: ...

    async def close(self) -> None: ...


async def _nothing() -> None:
    return None


@dataclass(frozen=True, slots=True)
class StateStores:
    rate_limiter: RateLimiter
    replay_guard: ReplayGuard
    ledger: RequestLedger
    cache_bus: CacheBus
    vault: Vault
    # Releases connections (Redis); the runtime awaits it on shutdown.
    close: Callable[[], Awaitable[None]] = _nothing
    # Raises when the shared state does not answer (GET /readyz); in-process: never.
    ready: Callable[[], Awaitable[None]] = _nothing
