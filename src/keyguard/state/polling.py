"""Cache invalidation without Redis: poll the database for keys that changed.

Embedded mode is one ``keyguard serve`` process, but a ``keyguard gateway`` (or a second
server) may share its database. Each process asks, once per ``interval``, what changed
since it last looked and drops those keys from its cache: a revocation made by one
process reaches the others within about a second, without any broker. (With Redis
configured, pub/sub does this instantly.)

"Since it last looked" is a position in a **monotonic change sequence** written in the
same transaction as the change and in commit order (the audit log's sequence, which is
taken under the audit head's row lock, so a transaction that commits later always has a
higher number). A wall-clock ``updated_at`` was not that: a revocation committing more
than the polls' overlap after its timestamp (waiting on a lock, say) was missed until
the cache's TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from keyguard.clock import Clock

log = logging.getLogger("keyguard.state")

# (position after which to look) -> (key ids changed, the new position)
ChangesAfter = Callable[[int], Awaitable[tuple[list[str], int]]]
# The current position, where a new poller starts.
Position = Callable[[], Awaitable[int]]


class PollingCacheBus:
    def __init__(
        self,
        changes_after: ChangesAfter,
        position: Position,
        clock: Clock,
        *,
        interval: float = 1.0,
    ) -> None:
        self._changes_after = changes_after
        self._position = position
        self._clock = clock
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    async def publish(self, key_id: str) -> None:
        return None  # the committed change is the message

    async def start(self, on_invalidate: Callable[[str], None]) -> None:
        after = await self._position()
        self._task = asyncio.get_running_loop().create_task(self._poll(on_invalidate, after))

    async def poll_once(self, on_invalidate: Callable[[str], None], after: int) -> int:
        """Forget every key changed after position ``after``; return the new position."""
        changed, position = await self._changes_after(after)
        for key_id in dict.fromkeys(changed):  # each key once per poll, in order
            on_invalidate(key_id)
        return position

    async def _poll(self, on_invalidate: Callable[[str], None], after: int) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                after = await self.poll_once(on_invalidate, after)
            except Exception as exc:  # a transient database error must not end polling
                log.warning("key change poll failed: %s", type(exc).__name__)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
