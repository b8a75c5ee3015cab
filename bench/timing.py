"""Tight timing loops: ``perf_counter_ns`` around N calls, several repeats, the median.

The median of the repeats (not the minimum) is reported: it is what a busy process sees,
and it is robust to the odd repeat a noisy neighbour disturbed. The garbage collector
stays on, as in the server. Loop overhead (~20 ns per iteration) is included and not
subtracted: it is below the resolution that matters here.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bench.report import median


@dataclass(frozen=True, slots=True)
class Timing:
    ns_per_op: float  # median over repeats
    repeats_ns_per_op: tuple[float, ...]

    @property
    def us_per_op(self) -> float:
        return self.ns_per_op / 1000

    @property
    def ops_per_s(self) -> float:
        return 1e9 / self.ns_per_op


def time_sync(fn: Callable[[], object], *, iterations: int, repeats: int) -> Timing:
    for _ in range(min(iterations, 1000)):  # warm caches, specialise bytecode
        fn()
    results: list[float] = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        for _ in range(iterations):
            fn()
        results.append((time.perf_counter_ns() - start) / iterations)
    return Timing(median(results), tuple(results))


async def time_async(
    fn: Callable[[], Awaitable[object]], *, iterations: int, repeats: int
) -> Timing:
    """Like ``time_sync`` for a coroutine function, awaited on the running event loop."""
    for _ in range(min(iterations, 1000)):
        await fn()
    results: list[float] = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        for _ in range(iterations):
            await fn()
        results.append((time.perf_counter_ns() - start) / iterations)
    return Timing(median(results), tuple(results))
