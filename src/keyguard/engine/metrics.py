"""What the doors count for ``GET /metrics`` (CONTRACT §11): plain integers in a dict,
kept per process and read when scraped. Counting costs a dictionary update and a
bisect per check; nothing here formats, locks or allocates per request beyond that.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter

# Upper bounds of the latency buckets, in seconds (a cache-hit check is microseconds; a
# miss, a database read).
LATENCY_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1)
OK = "ok"  # the result code of a check that passed


class CheckMetrics:
    def __init__(self) -> None:
        self.results: Counter[tuple[str, str]] = Counter()  # (door, code) -> checks
        # door -> count per bucket (the last one: above every bound), and their sum
        self.latency: dict[str, list[int]] = {}
        self.latency_sum: dict[str, float] = {}

    def observe(self, door: str, code: str | None, seconds: float) -> None:
        """One check at ``door`` ended with ``code`` (None: passed) after ``seconds``."""
        self.results[(door, code or OK)] += 1
        buckets = self.latency.get(door)
        if buckets is None:
            buckets = self.latency[door] = [0] * (len(LATENCY_BUCKETS) + 1)
        buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.latency_sum[door] = self.latency_sum.get(door, 0.0) + seconds

    def total(self) -> int:
        return sum(self.results.values())


__all__ = ["LATENCY_BUCKETS", "OK", "CheckMetrics"]
