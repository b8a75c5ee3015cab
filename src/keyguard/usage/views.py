"""What the usage service hands the edges: frozen views."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class UsagePoint:
    start: datetime
    requests: int
    succeeded: int
    refused: int


@dataclass(frozen=True, slots=True)
class UsageTotals:
    requests: int
    succeeded: int
    refused: int
    by_code: dict[str, int]


@dataclass(frozen=True, slots=True)
class BusyKey:
    key_id: str
    requests: int


@dataclass(frozen=True, slots=True)
class Usage:
    """Usage of a key, or of a project (then ``busiest_keys`` is filled)."""

    start: datetime
    end: datetime
    granularity: str
    totals: UsageTotals
    series: list[UsagePoint]
    last_used_at: datetime | None
    last_ip: str | None
    busiest_keys: list[BusyKey]
