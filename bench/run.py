"""Run every benchmark once and print one table: ``python bench/run.py [--quick]``.

Adding a check: write a function in a ``bench/`` module that returns ``list[Row]`` and
append it to ``INPROCESS_CHECKS`` (gets an ``InProcessContext``: a real Runtime, keys made
with any ``KeySpec``) or ``HTTP_CHECKS`` (gets the running server and the load generator).
Report ratios against a baseline measured in the same run, never absolute thresholds.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import platform
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

if __package__ in (None, ""):  # `python bench/run.py`: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import http_load, inprocess, key_scale, oauth, restrictions, webhooks, workers
from bench.config import BenchConfig
from bench.http_load import LoadGenerator
from bench.inprocess import InProcessContext
from bench.report import Row, render
from bench.server import RunningServer, running_server

InProcessCheck = Callable[[InProcessContext], Awaitable[list[Row]]]
HttpCheck = Callable[[RunningServer, LoadGenerator, BenchConfig], list[Row]]


async def webhook_delivery(ctx: InProcessContext) -> list[Row]:
    return await webhooks.measure(deliveries=500 if ctx.config.quick else 2000)


async def keys_at_scale(ctx: InProcessContext) -> list[Row]:
    return await key_scale.key_scale(100_000 if ctx.config.quick else 1_000_000)


INPROCESS_CHECKS: list[InProcessCheck] = [
    inprocess.verification_cost,
    inprocess.route_cost,
    restrictions.restrictions_cost,
    oauth.oauth_cost,
    keys_at_scale,
    webhook_delivery,
]
HTTP_CHECKS: list[HttpCheck] = [
    http_load.protected_vs_unprotected,
    http_load.protected_vs_bare_starlette,
]


def _find(rows: list[Row], name: str) -> Row | None:
    return next((row for row in rows if row.name == name), None)


def auth_only_projection(rows: list[Row], config: BenchConfig) -> list[Row]:
    """What protected/unprotected would be if a route added nothing but authentication.

    With the server pinned to one saturated core, its CPU per request is 1/(req/s); adding
    the measured in-process door cost to it gives the throughput an auth-only route would
    reach. An estimate from two measured figures, labelled as such.
    """
    door = _find(rows, inprocess.DOOR_ROW)
    baseline = _find(rows, http_load.UNPROTECTED_ROW)
    if door is None or baseline is None or not config.can_pin:
        return []
    ratio = 1 / (1 + door.value * baseline.value / 1e6)
    return [
        Row(
            "derived",
            "auth-only route / unprotected (estimate)",
            ratio,
            "ratio",
            note=f"1 / (1 + {door.value:.1f} us x {baseline.value:,.0f} req/s)",
            target=f">= {http_load.ROUTE_RATIO_TARGET:.2f}",
            meets=ratio >= http_load.ROUTE_RATIO_TARGET,
        )
    ]


def _cpu_split(config: BenchConfig) -> tuple[frozenset[int] | None, frozenset[int] | None]:
    """(server cores, load-generator cores): disjoint when pinning is possible."""
    if not config.can_pin:
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    return frozenset({cpus[0]}), frozenset(cpus[1:])


def run_http(config: BenchConfig) -> list[Row]:
    server_cpus, load_cpus = _cpu_split(config)
    generator = http_load.load_generator(config, load_cpus)
    rows: list[Row] = []
    with running_server(cpus=server_cpus) as server:
        for check in HTTP_CHECKS:
            rows += check(server, generator, config)
    return rows


def header(config: BenchConfig) -> str:
    server_cpus, load_cpus = _cpu_split(config)
    pin = (
        f"server pinned to CPU {sorted(server_cpus)}, load generator to {sorted(load_cpus)}"
        if server_cpus and load_cpus
        else "no CPU pinning (server and load generator share every core)"
    )
    return (
        f"Keyguard bench ({'quick' if config.quick else 'full'}): "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, {pin}\n"
        f"in-process: {config.iterations:,} iterations x {config.repeats} repeats, median; "
        f"HTTP: {config.rounds} rounds x {config.duration_s:g} s per route, "
        f"{config.connections} connections, warm-up {config.warmup_s:g} s, median"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="short runs (smoke test, ~1 min)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin server/load to CPUs")
    parser.add_argument("--skip-http", action="store_true", help="in-process checks only")
    parser.add_argument("--skip-inprocess", action="store_true", help="HTTP checks only")
    parser.add_argument("--duration", type=float, help="seconds per HTTP run (override)")
    parser.add_argument("--rounds", type=int, help="A B rounds per HTTP check (override)")
    parser.add_argument("--connections", type=int, help="wrk connections (override)")
    args = parser.parse_args(argv)
    config = BenchConfig.create(quick=args.quick, pin_cpus=not args.no_pin)
    overrides = {
        "duration_s": args.duration,
        "rounds": args.rounds,
        "connections": args.connections,
    }
    config = dataclasses.replace(config, **{k: v for k, v in overrides.items() if v is not None})
    print(header(config), flush=True)
    started = time.monotonic()
    rows: list[Row] = []
    if not args.skip_inprocess:
        rows += asyncio.run(inprocess.run_all(config, INPROCESS_CHECKS))
    if not args.skip_http:
        rows += run_http(config)
        rows += workers.workers_scaling(config)
    rows += auth_only_projection(rows, config)
    print()
    print(render(rows))
    print(f"\n(took {time.monotonic() - started:.0f} s; targets are informational, not asserted)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
