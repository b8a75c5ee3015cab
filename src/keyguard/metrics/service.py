"""What ``GET /metrics`` reports, gathered when scraped: the doors' counters (kept by
the policy engine, per process), the key cache's loads, and the webhook outbox."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from keyguard.context import ServiceContext
from keyguard.engine.metrics import CheckMetrics
from keyguard.engine.verifier import PolicyEngine
from keyguard.webhooks.context import WebhookContext
from keyguard.webhooks.outbox import OutboxDepth, outbox_depth


class MetricsContext(WebhookContext, ServiceContext, Protocol):
    engine: PolicyEngine


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    checks: dict[tuple[str, str], int]  # (door, code) -> count
    latency: dict[str, tuple[list[int], float]]  # door -> (count per bucket, sum)
    cache_loads: int
    outbox: OutboxDepth


async def snapshot(ctx: MetricsContext) -> MetricsSnapshot:
    counted: CheckMetrics = ctx.engine.metrics
    return MetricsSnapshot(
        checks=dict(counted.results),
        latency={
            door: (list(buckets), counted.latency_sum.get(door, 0.0))
            for door, buckets in counted.latency.items()
        },
        cache_loads=ctx.engine.cache.loads,
        outbox=await outbox_depth(ctx),
    )


__all__ = ["MetricsContext", "MetricsSnapshot", "snapshot"]
