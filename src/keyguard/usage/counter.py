"""Counting every check of a known key at no cost to the request (CONTRACT §10).

The policy engine calls :class:`UsageCounter` once for each request that presented a key
it knows, answered or refused (through every door: middleware, verify API, gateway): one
dict update in memory, no I/O. Every ``interval`` seconds the counts are *added* to the
minute, hour and day buckets in one transaction. Adding (an upsert of ``count + n``),
never overwriting, is what lets several instances share one database and agree exactly.

What is at risk: a ``kill -9`` loses what this process counted since its last flush, at
most ``interval`` seconds of its requests; a clean stop flushes. A flush that fails (the
database is away) puts its counts back, to go with the next one. Memory is bounded: past
``max_buckets`` distinct (key, minute, answer) entries between two flushes, further
requests are counted as dropped and logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import case
from sqlalchemy.ext.asyncio import AsyncSession

from keyguard.clock import SystemClock, utc_from_ts
from keyguard.context import ServiceContext
from keyguard.engine.ipallow import UNKNOWN_NETWORK, network_of
from keyguard.periodic import Flusher
from keyguard.usage.anomalies import check_networks
from keyguard.usage.models import (
    GRANULARITIES,
    KeyLastUse,
    UsageBucket,
    project_total,
    upsert,
)

log = logging.getLogger("keyguard.usage")


_ROWS_PER_STATEMENT = 500
# Distinct client addresses remembered per key, minute and success (for new_network):
# enough to see every network of a normal client, bounded for a key used from everywhere.
MAX_ADDRESSES = 32

Ip = object  # the client's address (an ipaddress object or str), or None
# (key id, project id, minute number as a float, refusal code or None) ->
# [requests, time of the last one, its client's address, addresses of the successes]
Counts = dict[tuple[str, str | None, float, str | None], list[Any]]


def _chunks(rows: list[dict[str, Any]]) -> Iterable[list[dict[str, Any]]]:
    for i in range(0, len(rows), _ROWS_PER_STATEMENT):
        yield rows[i : i + _ROWS_PER_STATEMENT]


async def add_counts(db: AsyncSession, counts: Counts) -> None:
    """Add ``counts`` to every granularity's buckets, in the caller's transaction."""
    buckets: dict[tuple[str, str, datetime, str], tuple[str | None, int]] = {}
    for (key_id, project_id, minute, code), (n, *_) in counts.items():
        code = code or ""
        at = int(minute) * 60
        owners = [key_id] if project_id is None else [key_id, project_total(project_id)]
        for granularity, seconds in GRANULARITIES.items():
            start = utc_from_ts(at - at % seconds)
            for owner in owners:
                slot = (granularity, owner, start, code)
                buckets[slot] = (project_id, buckets.get(slot, (None, 0))[1] + n)
    rows = [
        {"granularity": g, "key_id": k, "start": s, "code": c, "project_id": p, "count": n}
        for (g, k, s, c), (p, n) in sorted(buckets.items())  # one lock order for everyone
    ]
    for chunk in _chunks(rows):
        insert = upsert(db, UsageBucket).values(chunk)
        await db.execute(
            insert.on_conflict_do_update(
                index_elements=["granularity", "key_id", "start", "code"],
                set_={"count": UsageBucket.count + insert.excluded.count},
            )
        )


def last_uses(counts: Counts) -> dict[str, tuple[str | None, float, Ip]]:
    """Each key's latest request in ``counts``: (project id, when, client address)."""
    last: dict[str, tuple[str | None, float, Ip]] = {}
    for (key_id, project_id, _, _), (_, at, ip, _) in counts.items():
        if key_id not in last or last[key_id][1] < at:
            last[key_id] = (project_id, at, ip)
    return last


def networks_used(counts: Counts) -> dict[tuple[str, str | None], dict[str, float]]:
    """The networks each key succeeded from, with when it last did (per minute)."""
    used: dict[tuple[str, str | None], dict[str, float]] = {}
    for (key_id, project_id, _, code), (_, at, _, ips) in counts.items():
        if code is not None or not ips:
            continue
        networks = used.setdefault((key_id, project_id), {})
        for ip in ips:
            network = network_of(ip)
            if network != UNKNOWN_NETWORK:  # no address (verify API without ip): no news
                networks[network] = max(networks.get(network, 0.0), at)
    return used


async def note_last_use(db: AsyncSession, last: dict[str, tuple[str | None, float, Ip]]) -> None:
    rows = [
        {
            "key_id": key_id,
            "project_id": project_id,
            "last_used_at": utc_from_ts(at),
            "last_ip": None if ip is None else str(ip)[:64],
        }
        for key_id, (project_id, at, ip) in sorted(last.items())
    ]
    for chunk in _chunks(rows):
        insert = upsert(db, KeyLastUse).values(chunk)
        newer = insert.excluded.last_used_at > KeyLastUse.last_used_at
        await db.execute(
            insert.on_conflict_do_update(
                index_elements=["key_id"],
                set_={
                    "last_used_at": case(
                        (newer, insert.excluded.last_used_at), else_=KeyLastUse.last_used_at
                    ),
                    "last_ip": case((newer, insert.excluded.last_ip), else_=KeyLastUse.last_ip),
                },
            )
        )


class UsageCounter(Flusher):
    def __init__(
        self, ctx: ServiceContext, *, interval: float = 5.0, max_buckets: int = 200_000
    ) -> None:
        super().__init__(interval=interval, name="usage flush")
        self._ctx = ctx
        # The hook runs once per request: the system clock's own function, not a wrapper.
        self._now = time.time if isinstance(ctx.clock, SystemClock) else ctx.clock.now
        self._max = max_buckets
        self._counts: Counts = {}
        self._dropped = 0

    def __call__(self, key_id: str, project_id: str | None, code: str | None, ip: Ip) -> None:
        """The engine's ``on_use`` hook: O(1), no I/O (``code`` is None for a success).
        Kept to a handful of bytecodes: it is paid by every verified request."""
        now = self._now()
        slot = (key_id, project_id, now // 60, code)
        entry = self._counts.get(slot)
        if entry is None:
            if len(self._counts) >= self._max:
                self._dropped += 1
                return
            self._counts[slot] = [1, now, ip, {ip} if code is None else None]
            return
        entry[0] += 1
        entry[1] = now
        # The same client again is the same object (the doors' address parser caches),
        # already in the set: skip hashing it (an address object hashes in Python).
        if code is None and ip is not entry[2] and len(entry[3]) < MAX_ADDRESSES:
            entry[3].add(ip)
        entry[2] = ip

    async def flush(self) -> int:
        """Add what was counted to the buckets; how many requests that was."""
        counts, self._counts = self._counts, {}
        dropped, self._dropped = self._dropped, 0
        if dropped:
            log.warning("usage: %d requests not counted (too many distinct buckets)", dropped)
        if not counts:
            return 0
        try:
            async with self._ctx.transaction() as db:
                await add_counts(db, counts)
                await note_last_use(db, last_uses(counts))
        except BaseException:
            self._put_back(counts)
            raise
        # The counts are safe; new networks are looked at after them, on their own, so a
        # failure there (the mail outbox, the database for a moment) never holds counting
        # back. A missed check only misses that one alert.
        networks = networks_used(counts)
        if networks:
            try:
                await check_networks(self._ctx, networks)
            except Exception as exc:
                log.warning("usage: new-network check failed: %s", type(exc).__name__)
        return sum(entry[0] for entry in counts.values())

    def _put_back(self, counts: Counts) -> None:
        for slot, (n, at, ip, ips) in counts.items():
            entry = self._counts.get(slot)
            if entry is None:
                self._counts[slot] = [n, at, ip, ips]
            else:
                entry[0] += n
                if ips:
                    entry[3].update(ips)
