"""Injectable time, so expiry, TOTP steps and timestamp windows are tested without sleeping."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol, TypeVar

_Instant = TypeVar("_Instant", float, datetime)


class Clock(Protocol):
    def now(self) -> float:
        """Unix time in seconds."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()


class FrozenClock:
    """A clock tests move by hand."""

    def __init__(self, start: float | None = None) -> None:
        self.t = time.time() if start is None else start

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def utc_from_ts(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def ts_from_utc(dt: datetime) -> float:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def has_passed(deadline: _Instant | None, now: _Instant) -> bool:
    """The one "expired" rule: a deadline passes at its instant (``<=``), never when unset.

    Unix seconds on the hot path (the engine), aware datetimes in the services and views.
    """
    return deadline is not None and deadline <= now
