"""Reading usage (CONTRACT §10): totals, a time series and the busiest keys, from the
buckets of one granularity, so a 30-day hourly chart reads 720 rows per key at most."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, union_all

from keyguard.clock import utc_from_ts
from keyguard.context import ServiceContext
from keyguard.errors import NotFound, ValidationFailed
from keyguard.keys.models import ApiKey
from keyguard.projects.models import Project
from keyguard.usage.models import (
    GRANULARITIES,
    PROJECT_TOTAL,
    KeyLastUse,
    UsageBucket,
    project_total,
)
from keyguard.usage.views import BusyKey, Usage, UsagePoint, UsageTotals

MAX_POINTS = 2_000
BUSIEST = 10
# Without ``from``, this much before ``to``: one day of hours, one hour of minutes…
DEFAULT_SPAN = {"minute": 60, "hour": 24, "day": 30}


def _utc(value: datetime | None) -> float | None:
    """A bound as Unix time; a value without a zone is UTC (never the server's zone)."""
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def window(
    now: float, start: datetime | None, end: datetime | None, granularity: str
) -> tuple[datetime, datetime]:
    """[start, end) in whole buckets (UTC): ``start``'s bucket through ``end``'s bucket
    (``end`` defaults to now, so the current bucket is included)."""
    if granularity not in GRANULARITIES:
        raise ValidationFailed("granularity must be minute, hour or day", field="granularity")
    step = GRANULARITIES[granularity]
    end_ts = _utc(end)
    end_ts = (now if end_ts is None else end_ts) // step * step + step
    start_ts = _utc(start)
    start_ts = end_ts - DEFAULT_SPAN[granularity] * step if start_ts is None else start_ts
    start_ts -= start_ts % step
    if start_ts >= end_ts:
        raise ValidationFailed("from must be before to", field="from")
    if (end_ts - start_ts) / step > MAX_POINTS:
        raise ValidationFailed(
            f"at most {MAX_POINTS} {granularity}s: choose a coarser granularity",
            field="granularity",
        )
    try:
        return utc_from_ts(start_ts), utc_from_ts(end_ts)
    except (OverflowError, ValueError, OSError):
        raise ValidationFailed("from and to must be real dates", field="to") from None


def _summarise(
    rows: list[Any], start: datetime, end: datetime, granularity: str
) -> tuple[UsageTotals, list[UsagePoint]]:
    """(bucket start, code, count) rows → totals and a dense series (empty buckets are 0)."""
    by_start: dict[datetime, list[int]] = defaultdict(lambda: [0, 0])
    by_code: dict[str, int] = defaultdict(int)
    for at, code, count in rows:
        point = by_start[at]
        point[0] += count
        if code:
            by_code[code] += count
        else:
            point[1] += count
    step = timedelta(seconds=GRANULARITIES[granularity])
    series = []
    at = start
    while at < end:
        requests, succeeded = by_start.get(at, (0, 0))
        series.append(UsagePoint(at, requests, succeeded, requests - succeeded))
        at += step
    requests = sum(p.requests for p in series)
    succeeded = sum(p.succeeded for p in series)
    return UsageTotals(requests, succeeded, requests - succeeded, dict(by_code)), series


async def key_usage(
    ctx: ServiceContext,
    key_id: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    granularity: str = "hour",
) -> Usage:
    start, end = window(ctx.clock.now(), start, end, granularity)
    async with ctx.sessions() as db:
        if await db.get(ApiKey, key_id) is None:
            raise NotFound("No such key")
        rows = await db.execute(
            select(UsageBucket.start, UsageBucket.code, UsageBucket.count).where(
                UsageBucket.granularity == granularity,
                UsageBucket.key_id == key_id,
                UsageBucket.start >= start,
                UsageBucket.start < end,
            )
        )
        last = await db.get(KeyLastUse, key_id)
        totals, series = _summarise(list(rows.all()), start, end, granularity)
    return Usage(
        start,
        end,
        granularity,
        totals,
        series,
        last.last_used_at if last else None,
        last.last_ip if last else None,
        [],
    )


def _whole_days(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """The whole days inside [start, end) (an empty range when there are none)."""
    day = 86400
    first = -(-start.timestamp() // day) * day
    last = end.timestamp() // day * day
    return (utc_from_ts(first), utc_from_ts(max(first, last)))


async def _busiest(
    db: Any, project_id: str, start: datetime, end: datetime, granularity: str
) -> list[BusyKey]:
    """The keys with most requests in [start, end), exactly, reading as few rows as it can:
    day buckets for the whole days, the window's own granularity for the edges."""
    of_project = (
        UsageBucket.project_id == project_id,
        UsageBucket.key_id.not_like(f"{PROJECT_TOTAL}%"),
    )
    days_from, days_to = _whole_days(start, end)
    parts = []
    if granularity != "day" and days_from < days_to:
        spans = [
            ("day", days_from, days_to),
            (granularity, start, days_from),
            (granularity, days_to, end),
        ]
    else:
        spans = [(granularity, start, end)]
    for g, a, b in spans:
        if a >= b:
            continue
        parts.append(
            select(UsageBucket.key_id, UsageBucket.count).where(
                UsageBucket.granularity == g,
                UsageBucket.start >= a,
                UsageBucket.start < b,
                *of_project,
            )
        )
    if not parts:
        return []
    rows = union_all(*parts).subquery()
    summed = func.sum(rows.c.count)
    found = await db.execute(
        select(rows.c.key_id, summed)
        .group_by(rows.c.key_id)
        .order_by(summed.desc(), rows.c.key_id)
        .limit(BUSIEST)
    )
    return [BusyKey(key_id, int(n)) for key_id, n in found.all()]


async def project_usage(
    ctx: ServiceContext,
    project_id: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    granularity: str = "hour",
) -> Usage:
    start, end = window(ctx.clock.now(), start, end, granularity)
    async with ctx.sessions() as db:
        if await db.get(Project, project_id) is None:
            raise NotFound("No such project")
        rows = await db.execute(
            select(UsageBucket.start, UsageBucket.code, UsageBucket.count).where(
                UsageBucket.granularity == granularity,
                UsageBucket.key_id == project_total(project_id),
                UsageBucket.start >= start,
                UsageBucket.start < end,
            )
        )
        totals, series = _summarise(list(rows.all()), start, end, granularity)
        busy = await _busiest(db, project_id, start, end, granularity)
        last = (
            await db.execute(
                select(KeyLastUse)
                .where(KeyLastUse.project_id == project_id)
                .order_by(KeyLastUse.last_used_at.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
    return Usage(
        start,
        end,
        granularity,
        totals,
        series,
        last.last_used_at if last else None,
        last.last_ip if last else None,
        busy,
    )


async def last_uses(ctx: ServiceContext, project_id: str) -> dict[str, tuple[datetime, str | None]]:
    """Each of the project's keys that was ever presented: when last, and from where."""
    async with ctx.sessions() as db:
        rows = await db.execute(
            select(KeyLastUse.key_id, KeyLastUse.last_used_at, KeyLastUse.last_ip).where(
                KeyLastUse.project_id == project_id
            )
        )
        return {key_id: (at, ip) for key_id, at, ip in rows.all()}
