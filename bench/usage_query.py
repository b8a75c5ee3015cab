"""How long do usage queries take on a database holding 30 days of usage? (issue 9)

    .venv/bin/python bench/usage_query.py [--keys 1000] [--minute-keys 100] [--repeats 20]

A fresh SQLite database (the embedded default) is filled the way flushes fill it, in bulk:
``--keys`` keys of one project with 30 days of hour and day buckets each (every hour busy,
successes and one refusal code), the project's own buckets, and ``--minute-keys`` of those
keys with 30 days of *minute* buckets (one row per key per minute: the worst case, a key
busy every minute; 100 keys x 43,200 minutes = 4.3 M rows). Then, timed (median of
``--repeats``, after one warm-up):

- a 30-day hourly query for one key that has minute buckets too (``key_usage``);
- a 30-day hourly query for the whole project of ``--keys`` keys (``project_usage``:
  totals, series and busiest keys);
- a 24-hour minute query for one key.

Target (issue 9): <= 50 ms for the first two on SQLite. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert

from keyguard.accounts.service import init_admin
from keyguard.clock import FrozenClock, utc_from_ts
from keyguard.keys.models import ApiKey
from keyguard.keys.service import KeySpec, create_key
from keyguard.runtime import Runtime
from keyguard.settings import Settings
from keyguard.usage import service as usage
from keyguard.usage.models import UsageBucket, project_total

DAYS = 30
TARGET_MS = 50.0


async def fill(runtime: Runtime, project_id: str, key_ids: list[str], minute_keys: int) -> int:
    now = runtime.clock.now()
    hour0 = now - now % 3600 - DAYS * 24 * 3600
    rows = 0

    async def write(batch: list[dict[str, object]]) -> None:
        async with runtime.transaction() as db:
            await db.execute(insert(UsageBucket), batch)

    batch: list[dict[str, object]] = []

    def add(granularity: str, owner: str, at: float, code: str, count: int) -> None:
        start = utc_from_ts(at)
        batch.append(
            {"granularity": granularity, "key_id": owner, "start": start, "code": code,
             "project_id": project_id, "count": count}
        )  # fmt: skip

    for owner in [*key_ids, project_total(project_id)]:
        scale = len(key_ids) if owner.startswith("@") else 1
        for h in range(DAYS * 24):
            add("hour", owner, hour0 + h * 3600, "", 60 * scale)
            add("hour", owner, hour0 + h * 3600, "ip_not_allowed", scale)
        for d in range(DAYS + 1):
            add("day", owner, hour0 - hour0 % 86400 + d * 86400, "", 1440 * scale)
        if len(batch) > 50_000:
            rows += len(batch)
            await write(batch)
            batch.clear()
    for key_id in key_ids[:minute_keys]:
        for m in range(DAYS * 24 * 60):
            add("minute", key_id, hour0 + m * 60, "", 1)
            if len(batch) >= 50_000:
                rows += len(batch)
                await write(batch)
                batch.clear()
    if batch:
        rows += len(batch)
        await write(batch)
    return rows


async def timed(repeats: int, query) -> float:  # type: ignore[no-untyped-def]
    await query()  # warm: the page cache, SQLAlchemy's statement cache
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        await query()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


async def main(keys: int, minute_keys: int, repeats: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        clock = FrozenClock()
        runtime = await Runtime.start(Settings(data_dir=Path(tmp)), clock=clock)
        try:
            init = await init_admin(runtime, email="bench@example.com", password="bench password 1")
            project_id = init.project.project.id
            first = await create_key(runtime, project_id, KeySpec(name="k0"), actor="bench")
            key_ids = [first.key.id]
            # The other keys' rows only need to exist: inserted directly, fast.
            async with runtime.transaction() as db:
                template = await db.get(ApiKey, first.key.id)
                assert template is not None
                values = {a.key: getattr(template, a.key) for a in ApiKey.__mapper__.column_attrs}
                for i in range(1, keys):
                    key_id = f"kg_live_bench{i:06d}"
                    key_ids.append(key_id)
                    await db.execute(insert(ApiKey).values({**values, "id": key_id}))
            t0 = time.perf_counter()
            rows = await fill(runtime, project_id, key_ids, minute_keys)
            filled = time.perf_counter() - t0
            end = utc_from_ts(clock.now())
            start = end - timedelta(days=DAYS)
            one_key = await timed(repeats, lambda: usage.key_usage(
                runtime, key_ids[0], start=start, end=end, granularity="hour"))  # fmt: skip
            project = await timed(repeats, lambda: usage.project_usage(
                runtime, project_id, start=start, end=end, granularity="hour"))  # fmt: skip
            minutes = await timed(repeats, lambda: usage.key_usage(
                runtime, key_ids[0], start=end - timedelta(days=1), end=end,
                granularity="minute"))  # fmt: skip
            size = (Path(tmp) / "keyguard.db").stat().st_size
        finally:
            await runtime.close()
    print(f"usage queries on SQLite: {rows:,} bucket rows ({size / 2**20:,.0f} MiB), "
          f"{keys:,} keys x {DAYS} days of hours, {minute_keys} of them with {DAYS} days of "
          f"minutes; filled in {filled:.0f} s; median of {repeats}")  # fmt: skip
    print(f"  30-day hourly, one key            {one_key:8.2f} ms   [target <= {TARGET_MS:g} ms: "
          f"{'ok' if one_key <= TARGET_MS else 'MISSED'}]")  # fmt: skip
    print(f"  30-day hourly, project of {keys:,} keys {project:8.2f} ms   [target <= {TARGET_MS:g} "
          f"ms: {'ok' if project <= TARGET_MS else 'MISSED'}]")  # fmt: skip
    print(f"  24-hour by minute, one key        {minutes:8.2f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--minute-keys", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.keys, args.minute_keys, args.repeats))
