"""Server throughput on loopback: wrk (or, only if wrk is missing, a labelled Python client).

The machine is noisy and the load generator shares it with the server, so routes are
measured alternately (A B A B ...) after a warm-up, and medians are reported. The ratio
that matters is taken per round (A and B measured back to back), then its median.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from bench.config import BenchConfig
from bench.report import Row, median
from bench.server import RunningServer, pinned, running_bare_app

WRK_INSTALL_HINT = "apt-get install -y wrk   (Debian/Ubuntu, as root; brew install wrk on macOS)"
ROUTE_RATIO_TARGET = 0.90
SECTION = "HTTPS server throughput (keyguard serve, loopback)"
UNPROTECTED_ROW = "unprotected GET /v1/"


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LoadResult:
    requests_per_s: float
    requests: int
    errors: int  # non-2xx/3xx answers plus socket errors: any makes the figure suspect
    p50_ms: float | None = None
    p99_ms: float | None = None


class LoadGenerator(Protocol):
    """Runs ``duration_s`` of closed-loop load against one route."""

    @property
    def label(self) -> str: ...

    def run(self, server: RunningServer, route: Route, duration_s: float) -> LoadResult: ...


_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _wrk_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"unexpected wrk duration {text!r}")
    return float(match[1]) * _UNITS_MS[match[2]]


def parse_wrk(output: str) -> LoadResult:
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    total = re.search(r"^\s*(\d+) requests in", output, re.M)
    if rps is None or total is None:
        raise RuntimeError(f"could not parse wrk output:\n{output}")
    errors = 0
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if non2xx:
        errors += int(non2xx[1])
    sock = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if sock:
        errors += sum(int(n) for n in sock.groups())
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    return LoadResult(
        requests_per_s=float(rps[1]),
        requests=int(total[1]),
        errors=errors,
        p50_ms=_wrk_ms(p50[1]) if p50 else None,
        p99_ms=_wrk_ms(p99[1]) if p99 else None,
    )


@dataclass
class Wrk:
    threads: int
    connections: int
    cpus: frozenset[int] | None
    executable: str = "wrk"

    @property
    def label(self) -> str:
        return f"wrk -t{self.threads} -c{self.connections}"

    def run(self, server: RunningServer, route: Route, duration_s: float) -> LoadResult:
        command = [
            self.executable,
            f"-t{self.threads}",
            f"-c{self.connections}",
            f"-d{max(1, round(duration_s))}s",
            "--latency",
        ]
        for name, value in route.headers.items():
            command += ["-H", f"{name}: {value}"]
        command.append(server.base_url + route.path)
        out = subprocess.run(pinned(command, self.cpus), check=True, capture_output=True, text=True)
        return parse_wrk(out.stdout)


@dataclass
class PythonLoad:
    """Fallback when wrk is absent: httpx over keep-alive connections, in this process.

    Labelled as such in the output: a Python client saturates long before the server
    does, so its absolute figures understate the server and its ratios are compressed.
    """

    connections: int
    cpus: frozenset[int] | None
    label: str = "python-httpx FALLBACK (wrk missing)"

    def run(self, server: RunningServer, route: Route, duration_s: float) -> LoadResult:
        if self.cpus:
            os.sched_setaffinity(0, self.cpus)
        return asyncio.run(self._run(server, route, duration_s))

    async def _run(self, server: RunningServer, route: Route, duration_s: float) -> LoadResult:
        ok = 0
        errors = 0
        limits = httpx.Limits(max_connections=self.connections)
        async with httpx.AsyncClient(
            base_url=server.base_url, verify=False, limits=limits, timeout=10.0
        ) as http:
            deadline = time.perf_counter() + duration_s

            async def worker() -> None:
                nonlocal ok, errors
                while time.perf_counter() < deadline:
                    try:
                        response = await http.get(route.path, headers=dict(route.headers))
                    except httpx.HTTPError:
                        errors += 1
                        continue
                    if response.status_code < 400:
                        ok += 1
                    else:
                        errors += 1

            start = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(self.connections)))
            elapsed = time.perf_counter() - start
        return LoadResult(requests_per_s=ok / elapsed, requests=ok + errors, errors=errors)


def load_generator(config: BenchConfig, cpus: frozenset[int] | None) -> LoadGenerator:
    executable = shutil.which("wrk")
    if executable is not None:
        return Wrk(config.threads, config.connections, cpus, executable)
    print(f"!! wrk not found; install it with:  {WRK_INSTALL_HINT}")
    print("!! falling back to a Python load generator: figures are NOT comparable to wrk's")
    return PythonLoad(config.connections, cpus)


def alternate(
    generator: LoadGenerator,
    server: RunningServer,
    routes: Sequence[Route],
    config: BenchConfig,
) -> dict[str, list[LoadResult]]:
    """Warm every route up, then ``config.rounds`` rounds of A B (C ...) back to back."""
    for route in routes:
        generator.run(server, route, config.warmup_s)
    results: dict[str, list[LoadResult]] = {route.name: [] for route in routes}
    for _ in range(config.rounds):
        for route in routes:
            results[route.name].append(generator.run(server, route, config.duration_s))
    return results


def compare(
    section: str,
    results: dict[str, list[LoadResult]],
    *,
    subject: Route,
    baseline: Route,
    label: str,
    target: float | None = ROUTE_RATIO_TARGET,
) -> list[Row]:
    """Rows for each route (median req/s, p50/p99) and subject/baseline per-round ratio."""
    rows: list[Row] = []
    for route in (baseline, subject):
        runs = results[route.name]
        rps = [r.requests_per_s for r in runs]
        errors = sum(r.errors for r in runs)
        p50 = [r.p50_ms for r in runs if r.p50_ms is not None]
        p99 = [r.p99_ms for r in runs if r.p99_ms is not None]
        latency = f"p50 {median(p50):.2f} ms, p99 {median(p99):.2f} ms; " if p50 and p99 else ""
        note = f"{latency}rounds: {', '.join(f'{v:,.0f}' for v in rps)}"
        if errors:
            note += f"; {errors} ERRORS: figure suspect"
        rows.append(Row(section, f"{route.name}", median(rps), "req/s", note=note))
    ratios = [
        s.requests_per_s / b.requests_per_s
        for s, b in zip(results[subject.name], results[baseline.name], strict=True)
    ]
    ratio = median(ratios)
    rows.append(
        Row(
            section,
            f"{subject.name.split(' ')[0]}/{baseline.name.split(' ')[0]} ratio",
            ratio,
            "ratio",
            note=f"median of per-round ratios {', '.join(f'{r:.3f}' for r in ratios)}; {label}",
            target=f">= {target:.2f}" if target is not None else "",
            meets=None if target is None else ratio >= target,
        )
    )
    return rows


def protected_vs_unprotected(
    server: RunningServer, generator: LoadGenerator, config: BenchConfig
) -> list[Row]:
    """Check 2: GET /v1/sessions/ID (Bearer key) against GET /v1/ on the same server."""
    key = server.create_project_key(name="bench-http")["key"]
    session_id = server.create_session(key)
    protected = Route(
        "protected GET /v1/sessions/ID",
        f"/v1/sessions/{session_id}",
        {"Authorization": f"Bearer {key}"},
    )
    unprotected = Route(UNPROTECTED_ROW, "/v1/")
    # A second baseline: the cheapest route the server has (plain ASGI, no work at all).
    bare = Route("bare GET /healthz (plain ASGI, unprotected)", "/healthz")
    # One request each through a verifying client first: a 401/404 must not be benchmarked.
    with server.client() as http:
        for route in (protected, unprotected, bare):
            status = http.get(route.path, headers=dict(route.headers)).status_code
            if status != 200:
                raise RuntimeError(f"{route.path} answered {status}, expected 200")
    results = alternate(generator, server, [unprotected, bare, protected], config)
    rows = compare(SECTION, results, subject=protected, baseline=unprotected, label=generator.label)
    against_bare = compare(
        SECTION, results, subject=protected, baseline=bare, label=generator.label, target=None
    )
    # Keep the bare route's row and its ratio; the protected route's row is already there.
    rows += [against_bare[0], against_bare[2]]
    return rows


BARE_RATIO_TARGET = 0.80  # issue 11: protected route / bare Starlette over HTTPS


def protected_vs_bare_starlette(
    server: RunningServer, generator: LoadGenerator, config: BenchConfig
) -> list[Row]:
    """Issue 11's like-for-like figure: Keyguard's protected GET /v1/sessions/ID (access log
    on, as shipped) against a bare Starlette app (bench/bare_app.py) with no check at all,
    served by uvicorn with the same certificate on the same cores, rounds alternating."""
    key = server.create_project_key(name="bench-bare")["key"]
    session_id = server.create_session(key)
    protected = Route(
        "protected GET /v1/sessions/ID",
        f"/v1/sessions/{session_id}",
        {"Authorization": f"Bearer {key}"},
    )
    bare = Route("bare Starlette GET /v1/sessions/ID (uvicorn, same TLS)", "/v1/sessions/x")
    with running_bare_app(server, cpus=server.cpus) as baseline:
        generator.run(baseline, bare, config.warmup_s)
        generator.run(server, protected, config.warmup_s)
        results: dict[str, list[LoadResult]] = {bare.name: [], protected.name: []}
        for _ in range(config.rounds):
            results[bare.name].append(generator.run(baseline, bare, config.duration_s))
            results[protected.name].append(generator.run(server, protected, config.duration_s))
    return compare(
        "HTTPS: Keyguard against a bare app",
        results,
        subject=protected,
        baseline=bare,
        label=generator.label,
        target=BARE_RATIO_TARGET,
    )
