"""``Retry-After`` parsing (RFC 9110 §10.2.3: delay-seconds or an HTTP-date)."""

from __future__ import annotations

from datetime import UTC
from email.utils import parsedate_to_datetime

_MAX_DIGITS = 10  # beyond ~300 years the value is noise, not a request


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from ``now`` (Unix time), or None when absent or unparseable.

    A date in the past means "now" (0.0), never a negative delay.
    """
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value) if len(value) <= _MAX_DIGITS else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" or an obsolete format: HTTP dates are always GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


__all__ = ["parse_retry_after"]
