"""Cache invalidation without Redis: poll the database for keys that changed.

Embedded mode is one ``keyguard serve`` process, but a ``keyguard gateway`` (or a second
server) may share its database. Every key change bumps ``api_keys.updated_at``, so each
process asks, once per ``interval``, which keys changed since it last looked and drops
them from its cache: a revocation made by one process reaches the others within about a
second, without any broker. (With Redis configured, pub/sub does this instantly.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from keyguard.clock import Clock, utc_from_ts

log = logging.getLogger("keyguard.state")

ChangedSince = Callable[[datetime], Awaitable[list[tuple[str, datetime]]]]

# Overlap between polls, so a row committed with a timestamp slightly in the past (a
# transaction that began before the previous poll) is still seen.
OVERLAP = timedelta(seconds=5)


class PollingCacheBus:
    def __init__(self, changed_since: ChangedSince, clock: Clock, *, interval: float = 1.0) -> None:
        self._changed_since = changed_since
        self._clock = clock
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self._seen: dict[str, datetime] = {}

    async def publish(self, key_id: str) -> None:
        return None  # the committed row change is the message

    async def start(self, on_invalidate: Callable[[str], None]) -> None:
        since = utc_from_ts(self._clock.now())
        self._task = asyncio.get_running_loop().create_task(self._poll(on_invalidate, since))

    async def poll_once(self, on_invalidate: Callable[[str], None], since: datetime) -> datetime:
        """Forget every key changed after ``since``; return where the next poll starts."""
        newest = since
        for key_id, updated_at in await self._changed_since(since - OVERLAP):
            if self._seen.get(key_id) != updated_at:  # each change is forgotten once
                self._seen[key_id] = updated_at
                on_invalidate(key_id)
            newest = max(newest, updated_at)
        # Entries older than the overlap window can no longer be returned: drop them.
        horizon = newest - OVERLAP
        self._seen = {k: v for k, v in self._seen.items() if v >= horizon}
        return newest

    async def _poll(self, on_invalidate: Callable[[str], None], since: datetime) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                since = await self.poll_once(on_invalidate, since)
            except Exception as exc:  # a transient database error must not end polling
                log.warning("key change poll failed: %s", type(exc).__name__)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
