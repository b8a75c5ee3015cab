"""Issue 11, target 4: ``keyguard serve --workers 2`` against ``--workers 1`` on this machine.

Both servers run at once (the idle one costs nothing) with the same Redis, neither pinned:
on a 2-core machine the load generator needs a core too, so server and wrk share both
cores in both configurations, and the ratio says what a second worker adds on the same
machine. Rounds alternate between the two. Redis: ``KEYGUARD_BENCH_REDIS_URL`` or
``KEYGUARD_TEST_REDIS_URL`` if set, else a ``redis-server`` started here on a free port.

Run alone: ``python -m bench.workers [--quick]``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from statistics import median

if __package__ in (None, ""):  # `python bench/workers.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.config import BenchConfig
from bench.http_load import LoadResult, Route, Wrk, compare
from bench.report import Row, render
from bench.server import RunningServer, free_port, running_server

SECTION = "Every core: keyguard serve --workers 2 / --workers 1 (Redis, nothing pinned)"
TARGET = 1.7


@contextlib.contextmanager
def redis_url() -> Iterator[str | None]:
    url = os.environ.get("KEYGUARD_BENCH_REDIS_URL") or os.environ.get("KEYGUARD_TEST_REDIS_URL")
    if url:
        yield url
        return
    executable = shutil.which("redis-server")
    if executable is None:
        yield None
        return
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="keyguard-bench-redis-") as tmp:
        process = subprocess.Popen(
            [executable, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--dir", tmp],
            stdout=subprocess.DEVNULL,
        )
        try:
            time.sleep(0.5)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            process.wait()


def _tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its children (the workers), from /proc."""
    total = 0.0
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        pids += [int(child) for child in task.read_text().split()]
    for each in pids:
        try:
            stat = Path(f"/proc/{each}/stat").read_text()
        except FileNotFoundError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _route(server: RunningServer) -> Route:
    key = server.create_project_key(name="bench-workers")["key"]
    session_id = server.create_session(key)
    return Route("", f"/v1/sessions/{session_id}", {"Authorization": f"Bearer {key}"})


def workers_scaling(config: BenchConfig) -> list[Row]:
    executable = shutil.which("wrk")
    with redis_url() as url:
        if url is None or executable is None:
            why = "no Redis (KEYGUARD_BENCH_REDIS_URL, redis-server)" if url is None else "no wrk"
            return [Row(SECTION, "skipped", 0, "", note=why)]
        # Two wrk threads: one would cap the load before two workers are busy.
        generator = Wrk(2, config.connections, None, executable)
        env = {"KEYGUARD_REDIS_URL": url}
        with (
            running_server(env=env, args=["--workers", "1"]) as one,
            running_server(env=env, args=["--workers", "2"]) as two,
        ):
            single = Route("1-worker protected GET", "")
            double = Route("2-worker protected GET", "")
            routes = {single.name: (one, _route(one)), double.name: (two, _route(two))}
            for server, route in routes.values():
                generator.run(server, route, config.warmup_s)
            results: dict[str, list[LoadResult]] = {single.name: [], double.name: []}
            cpu_per_request: dict[str, list[float]] = {single.name: [], double.name: []}
            for _ in range(config.rounds):
                for name, (server, route) in routes.items():
                    before = _tree_cpu_seconds(server.process.pid)
                    result = generator.run(server, route, config.duration_s)
                    used = _tree_cpu_seconds(server.process.pid) - before
                    results[name].append(result)
                    cpu_per_request[name].append(used / max(result.requests, 1) * 1e6)
    rows = compare(
        SECTION, results, subject=double, baseline=single, label=generator.label, target=TARGET
    )
    for name, values in cpu_per_request.items():
        rows.append(
            Row(
                SECTION,
                f"  server CPU per request, {name.split('-')[0]} worker(s)",
                median(values),
                "us",
                note="all worker processes, from /proc; the rest of the machine is wrk's",
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="keyguard serve --workers 2 against 1")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    print(render(workers_scaling(BenchConfig.create(quick=args.quick))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
