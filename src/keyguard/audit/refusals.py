"""Failed checks of identified keys, into the audit log (CONTRACT §10), coalesced.

A refused request must never cost a database write of its own: that would let anyone
turn bad requests into write load. The engine reports each refusal of an *identified*
key (its secret or id matched) to :class:`RefusalRecorder`, which only counts in memory;
every ``interval`` seconds one audit event per (key, code) is written, ``check.failed``
with the count and the last client IP. Memory is bounded: past ``max_buckets`` distinct
(key, code) pairs, further ones are counted as dropped and reported with the next flush.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from keyguard.audit import service as audit
from keyguard.clock import utc_from_ts
from keyguard.context import ServiceContext
from keyguard.periodic import Flusher

log = logging.getLogger("keyguard.audit")

ACTION = "check.failed"


@dataclass(slots=True)
class _Bucket:
    project_id: str | None
    count: int
    first_at: float
    last_ip: str | None


class RefusalRecorder(Flusher):
    def __init__(
        self, ctx: ServiceContext, *, interval: float = 5.0, max_buckets: int = 10_000
    ) -> None:
        super().__init__(interval=interval, name="failed-check audit")
        self._ctx = ctx
        self._max = max_buckets
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._dropped = 0

    def __call__(self, key_id: str, project_id: str | None, code: str, ip: str | None) -> None:
        """The engine's ``on_refusal`` hook: O(1), no I/O."""
        bucket = self._buckets.get((key_id, code))
        if bucket is not None:
            bucket.count += 1
            bucket.last_ip = ip
        elif len(self._buckets) < self._max:
            self._buckets[(key_id, code)] = _Bucket(project_id, 1, self._ctx.clock.now(), ip)
        else:
            self._dropped += 1

    async def flush(self) -> int:
        """Write what was counted; returns the number of audit events written."""
        if not self._buckets and not self._dropped:
            return 0
        buckets, self._buckets = self._buckets, {}
        dropped, self._dropped = self._dropped, 0
        at = utc_from_ts(self._ctx.clock.now())
        async with self._ctx.transaction() as session:
            for (key_id, code), b in buckets.items():
                await audit.record(
                    session,
                    at=at,
                    actor=key_id,
                    action=ACTION,
                    target=key_id,
                    project_id=b.project_id,
                    data={
                        "code": code,
                        "count": b.count,
                        "since": utc_from_ts(b.first_at).isoformat(),
                        "last_ip": b.last_ip,
                    },
                )
            if dropped:
                await audit.record(
                    session, at=at, actor="keyguard", action=ACTION, data={"dropped": dropped}
                )
        return len(buckets) + (1 if dropped else 0)
