"""Retry schedule (Svix's), Retry-After handling, and which results are retried."""

from __future__ import annotations

import random
from email.utils import formatdate

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyguard.webhooks.attempt import AttemptResult
from keyguard.webhooks.retry_after import parse_retry_after
from keyguard.webhooks.schedule import (
    JITTER,
    MAX_ATTEMPTS,
    MAX_RETRY_AFTER,
    RETRY_DELAYS,
    is_retryable,
    next_attempt_delay,
    should_disable_endpoint,
)


def result(status: int | None = None, error: str | None = None) -> AttemptResult:
    return AttemptResult("https://h.example/", status, 1.0, "", error, None)


def test_schedule_is_svix_s_eight_attempts() -> None:
    assert RETRY_DELAYS == (5, 300, 1800, 7200, 18000, 36000, 36000)
    assert MAX_ATTEMPTS == 8


@pytest.mark.parametrize(("attempt", "base"), list(enumerate(RETRY_DELAYS, start=1)))
def test_delay_follows_the_schedule_within_jitter(attempt: int, base: float) -> None:
    rng = random.Random(attempt)
    delays = [next_attempt_delay(attempt, retry_after=None, rng=rng) for _ in range(200)]
    assert all(d is not None and base * (1 - JITTER) <= d <= base * (1 + JITTER) for d in delays)
    assert len(set(delays)) > 1  # jitter actually varies


def test_no_delay_after_the_last_attempt() -> None:
    assert next_attempt_delay(8, retry_after=None, rng=random.Random(0)) is None
    assert next_attempt_delay(9, retry_after=30, rng=random.Random(0)) is None


def test_attempt_numbers_start_at_one() -> None:
    with pytest.raises(ValueError, match="start at 1"):
        next_attempt_delay(0, retry_after=None, rng=random.Random(0))


def test_retry_after_longer_than_the_schedule_wins() -> None:
    assert next_attempt_delay(1, retry_after=120, rng=random.Random(0)) == 120


def test_retry_after_shorter_than_the_schedule_is_ignored() -> None:
    delay = next_attempt_delay(3, retry_after=10, rng=random.Random(0))
    assert delay is not None
    assert delay >= 1800 * (1 - JITTER)


def test_retry_after_is_capped() -> None:
    delay = next_attempt_delay(1, retry_after=30 * 86400, rng=random.Random(0))
    assert delay == MAX_RETRY_AFTER


@given(
    st.integers(1, MAX_ATTEMPTS - 1),
    st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
    st.integers(0, 2**32),
)
def test_delay_is_never_negative_nor_unbounded(
    attempt: int, retry_after: float | None, seed: int
) -> None:
    delay = next_attempt_delay(attempt, retry_after=retry_after, rng=random.Random(seed))
    assert delay is not None
    assert 0 <= delay <= max(MAX_RETRY_AFTER, max(RETRY_DELAYS) * (1 + JITTER))


@pytest.mark.parametrize(
    "attempt",
    [
        result(error="timeout"),
        result(error="connect_failed"),
        result(error="dns_failed"),
        result(error="tls_error"),
        result(error="ssrf_blocked"),  # DNS may change; nothing is sent while blocked
        result(302, "redirect_not_followed"),
        result(400),
        result(401),
        result(404),
        result(429),
        result(500),
        result(503),
    ],
)
def test_failures_are_retried_like_svix(attempt: AttemptResult) -> None:
    assert is_retryable(attempt)
    assert not should_disable_endpoint(attempt)


def test_success_is_not_retried() -> None:
    assert result(200).success
    assert result(204).success
    assert not is_retryable(result(200))


def test_410_gone_disables_the_endpoint_instead_of_retrying() -> None:
    assert should_disable_endpoint(result(410))
    assert not is_retryable(result(410))


def test_invalid_url_is_not_retried() -> None:
    assert not is_retryable(result(error="invalid_url"))


# ---- Retry-After parsing -----------------------------------------------------------------

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        (formatdate(NOW + 90, usegmt=True), 90.0),
        ("Tue, 14 Nov 2023 22:13:20 GMT", 0.0),  # exactly NOW
        (formatdate(NOW - 600, usegmt=True), 0.0),  # a past date means now
        (None, None),
        ("", None),
        ("-5", None),
        ("1.5", None),
        ("soon", None),
        ("99999999999999999999", None),
        ("\uff11\uff12", None),  # full-width digits are not delay-seconds
    ],
)
def test_retry_after_is_parsed(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, NOW) == seconds
