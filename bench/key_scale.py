"""Issue 11, target 3: verification with 1,000,000 keys in the database against 1,000.

For each size, a fresh SQLite database holds ``REAL`` keys created through the service
and the rest as copies of one of them under other ids (inserted in SQL: a million keys
through the API would take an hour and measure nothing more). Measured per size:

- a cache hit: ``extract_credentials`` + ``PolicyEngine.verify`` (target: 1M ÷ 1k ≤ 1.1);
- a cache miss: the same after the key is dropped from the cache, so ``verify`` reads it
  from SQLite (target ≤ 1 ms at 1M), median over the real keys;
- the key cache's memory per cached key (tracemalloc, over the real keys).

Run: ``python -m bench.key_scale [--quick]`` (``--quick``: 100,000 instead of 1,000,000).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from statistics import median

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text

from bench.report import Row, render
from bench.timing import time_async
from keyguard.accounts.service import init_admin
from keyguard.engine.credentials import extract_credentials
from keyguard.engine.facts import RequestFacts
from keyguard.keys import service as keys
from keyguard.runtime import Runtime
from keyguard.settings import Settings

SECTION = "Keys at scale (SQLite, cache hit and miss)"
REAL = 300


async def _fill(runtime: Runtime, template: str, count: int) -> None:
    async with runtime.sessions() as db:
        columns = [row[1] for row in (await db.execute(text("PRAGMA table_info(api_keys)")))]
        others = ", ".join(f'"{c}"' for c in columns if c != "id")
        await db.execute(
            text(
                f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count) "
                f'INSERT INTO api_keys ("id", {others}) '
                f"SELECT 'kg_live_fill' || printf('%012d', i), {others} FROM n, api_keys "
                f"WHERE api_keys.id = :template"
            ),
            {"count": count, "template": template},
        )
        await db.commit()


async def measure(total: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="keyguard-bench-scale-") as tmp:
        runtime = await Runtime.start(Settings(data_dir=Path(tmp)))
        try:
            init = await init_admin(runtime, email="bench@example.com", password="bench-pass-1")
            project = init.project.project.id
            issued = [
                (await keys.create_key(runtime, project, keys.KeySpec(name="k"), actor="b")).issued
                for _ in range(REAL)
            ]
            started = time.monotonic()
            await _fill(runtime, issued[0].id, total - REAL)
            fill_s = time.monotonic() - started
            engine = runtime.engine
            facts = RequestFacts(
                client_ip="127.0.0.1", method="GET", path_with_query="/", https=True
            )
            headers = {"authorization": f"Bearer {issued[0].key}"}

            async def hit() -> object:
                credentials = extract_credentials(headers)
                assert not isinstance(credentials, type(None))
                return await engine.verify(credentials, facts)  # type: ignore[arg-type]

            await hit()
            t_hit = await time_async(hit, iterations=20_000, repeats=5)
            misses = []
            for key in issued:
                credentials = extract_credentials({"authorization": f"Bearer {key.key}"})
                engine.cache.invalidate(key.id)
                t0 = time.perf_counter()
                await engine.verify(credentials, facts)  # type: ignore[arg-type]
                misses.append(time.perf_counter() - t0)
            for key in issued:
                engine.cache.invalidate(key.id)
            tracemalloc.start()
            before = tracemalloc.take_snapshot()
            for key in issued:
                await engine.cache.get(key.id)
            after = tracemalloc.take_snapshot()
            tracemalloc.stop()
            grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
            return {
                "hit_us": t_hit.us_per_op,
                "miss_ms": median(misses) * 1000,
                "bytes_per_key": grown / REAL,
                "fill_s": fill_s,
            }
        finally:
            await runtime.close()


async def key_scale(large: int) -> list[Row]:
    small = await measure(1_000)
    big = await measure(large)
    return [
        Row(SECTION, "cache hit, 1,000 keys", small["hit_us"], "us/op"),
        Row(SECTION, f"cache hit, {large:,} keys", big["hit_us"], "us/op",
            note=f"filled in {big['fill_s']:.0f} s"),
        Row(SECTION, f"{large:,} ÷ 1,000 keys, cache hit", big["hit_us"] / small["hit_us"],
            "ratio", target="<= 1.10", meets=big["hit_us"] / small["hit_us"] <= 1.10),
        Row(SECTION, "cache miss, 1,000 keys", small["miss_ms"], "ms", note="median of 300"),
        Row(SECTION, f"cache miss, {large:,} keys", big["miss_ms"], "ms",
            target="<= 1 ms", meets=big["miss_ms"] <= 1.0, note="median of 300"),
        Row(SECTION, "key cache memory per cached key", big["bytes_per_key"], "bytes",
            note="tracemalloc, 300 keys loaded"),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="verification with 1M keys against 1k")
    parser.add_argument("--quick", action="store_true", help="100,000 keys instead of 1M")
    args = parser.parse_args(argv)
    print(render(asyncio.run(key_scale(100_000 if args.quick else 1_000_000))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
