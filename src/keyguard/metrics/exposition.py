"""A :class:`~keyguard.metrics.service.MetricsSnapshot` in Prometheus' text format,
through ``prometheus_client`` (its metric families and its serialiser)."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import accumulate

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from keyguard.engine.metrics import LATENCY_BUCKETS
from keyguard.metrics.service import MetricsSnapshot

RATE_LIMITED = "rate_limited"
# The text format every Prometheus reads (the library answers it too when not asked for
# another); what generate_latest writes with its default escaping.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


class _Snapshot(Collector):
    def __init__(self, snapshot: MetricsSnapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        s = self.snapshot
        checks = CounterMetricFamily(
            "keyguard_checks",
            "Credential checks by door (middleware, gateway, verify, api) and result code "
            "(ok, or the problem's code)",
            labels=["door", "code"],
        )
        refusals = CounterMetricFamily(
            "keyguard_rate_limit_refusals", "Checks refused by a rate limit", labels=["door"]
        )
        limited: dict[str, int] = {}
        for (door, code), count in sorted(s.checks.items()):
            checks.add_metric([door, code], count)
            if code == RATE_LIMITED:
                limited[door] = limited.get(door, 0) + count
        for door, count in sorted(limited.items()):
            refusals.add_metric([door], count)
        yield checks
        yield refusals
        latency = HistogramMetricFamily(
            "keyguard_check_duration_seconds",
            "How long a credential check took, by door",
            labels=["door"],
        )
        bounds = [*(repr(b) for b in LATENCY_BUCKETS), "+Inf"]
        for door, (buckets, total) in sorted(s.latency.items()):
            cumulative = list(zip(bounds, accumulate(buckets), strict=True))
            latency.add_metric([door], cumulative, sum_value=total)
        yield latency
        checked = sum(s.checks.values())
        yield CounterMetricFamily(
            "keyguard_key_cache_loads",
            "Key look-ups that missed the cache and read the database",
            value=s.cache_loads,
        )
        yield GaugeMetricFamily(
            "keyguard_key_cache_hit_ratio",
            "Share of checks answered from the key cache since start (1 - loads / checks)",
            value=max(0.0, 1 - s.cache_loads / checked) if checked else 1.0,
        )
        yield GaugeMetricFamily(
            "keyguard_webhook_outbox_depth",
            "Webhook deliveries waiting to be sent (retries included)",
            value=s.outbox.pending,
        )
        yield GaugeMetricFamily(
            "keyguard_webhook_outbox_oldest_age_seconds",
            "Age of the oldest delivery waiting (0 when none waits)",
            value=s.outbox.oldest_age_seconds,
        )


def exposition(snapshot: MetricsSnapshot) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(snapshot))
    return generate_latest(registry)


__all__ = ["CONTENT_TYPE", "exposition"]
