"""When to retry a failed delivery, and when to give up on an endpoint.

Svix's schedule (docs.svix.com, "Retries"): attempt 1 immediately, then after 5 s,
5 min, 30 min, 2 h, 5 h, 10 h and 10 h: 8 attempts over about 28 hours. Like Svix,
every non-2xx answer is retried, 4xx included (a receiver's 400/401 is often a
deploy-time bug fixed within the window); 410 Gone instead asks for the endpoint to be
disabled.
"""

from __future__ import annotations

import math
import random

from keyguard.webhooks import attempt as codes
from keyguard.webhooks.attempt import AttemptResult

# Delay before attempt n+1, after attempt n failed (index n-1).
RETRY_DELAYS: tuple[float, ...] = (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
JITTER = 0.2  # +/-20 %: spreads retries of one outage so they do not arrive in a burst
# A receiver's Retry-After is honoured up to the longest scheduled gap, so one answer
# cannot park a delivery for days.
MAX_RETRY_AFTER = max(RETRY_DELAYS)

# Failures that the same URL cannot recover from: retrying only repeats them.
_PERMANENT_ERRORS = frozenset({codes.INVALID_URL})


def next_attempt_delay(
    attempt_number: int, *, retry_after: float | None, rng: random.Random
) -> float | None:
    """Seconds to wait after attempt ``attempt_number`` (1-based) failed, or None
    when it was the last one.

    The larger of the jittered schedule and the receiver's ``Retry-After`` (capped at
    :data:`MAX_RETRY_AFTER`) wins; the result is never negative.

        >>> next_attempt_delay(1, retry_after=None, rng=random.Random(0)) <= 6
        True
    """
    if attempt_number < 1:
        raise ValueError("attempt numbers start at 1")
    if attempt_number >= MAX_ATTEMPTS:
        return None
    delay = RETRY_DELAYS[attempt_number - 1] * rng.uniform(1 - JITTER, 1 + JITTER)
    if retry_after is not None and math.isfinite(retry_after):
        delay = max(delay, min(max(retry_after, 0.0), MAX_RETRY_AFTER))
    return max(delay, 0.0)


def is_retryable(result: AttemptResult) -> bool:
    """Whether a failed attempt should be tried again (False for a success)."""
    if result.success or should_disable_endpoint(result):
        return False
    return result.error not in _PERMANENT_ERRORS


def should_disable_endpoint(result: AttemptResult) -> bool:
    """410 Gone: the receiver says the endpoint is gone for good (RFC 9110 §15.5.11)."""
    return result.status_code == 410


__all__ = [
    "JITTER",
    "MAX_ATTEMPTS",
    "MAX_RETRY_AFTER",
    "RETRY_DELAYS",
    "is_retryable",
    "next_attempt_delay",
    "should_disable_endpoint",
]
