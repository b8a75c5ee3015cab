"""HTTP bodies of the usage API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class PointOut(BaseModel):
    start: datetime
    requests: int
    succeeded: int
    refused: int


class TotalsOut(BaseModel):
    requests: int
    succeeded: int
    refused: int
    by_code: dict[str, int]


class BusyKeyOut(BaseModel):
    key_id: str
    requests: int


class UsageOut(BaseModel):
    key_id: str | None = None
    project_id: str | None = None
    start: datetime
    end: datetime
    granularity: str
    totals: TotalsOut
    last_used_at: datetime | None
    last_ip: str | None
    series: list[PointOut]
    busiest_keys: list[BusyKeyOut] | None = None
