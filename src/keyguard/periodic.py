"""Background jobs that run every so often for as long as the application does.

One copy of the loop every housekeeping task needs: start with the app, run the job (at
once or after the first interval), log and survive its failures (housekeeping must never
take the server down), stop cleanly with the app.

    async with periodic(prune_once, every=3600, name="retention"):
        ...  # the app's lifespan

:class:`Flusher` is the same loop for what counts in memory and writes in batches (the
failed-check recorder, the usage counter): started and closed by the runtime, and closing
writes what is still counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

log = logging.getLogger("keyguard")


@contextlib.asynccontextmanager
async def periodic(
    job: Callable[[], Awaitable[object]], *, every: float, name: str, at_start: bool = True
) -> AsyncIterator[None]:
    async def loop() -> None:
        if not at_start:
            await asyncio.sleep(every)
        while True:
            try:
                await job()
            except Exception as exc:
                log.warning("%s failed: %s", name, type(exc).__name__)
            await asyncio.sleep(every)

    task = asyncio.get_running_loop().create_task(loop(), name=f"keyguard-{name}")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class Flusher:
    """Counts in memory, written by :meth:`flush` every ``interval`` seconds and once
    more at :meth:`close`. Subclasses provide :meth:`flush`."""

    def __init__(self, *, interval: float, name: str) -> None:
        self.interval = interval
        self._name = name
        self._task: asyncio.Task[None] | None = None

    async def flush(self) -> int:
        raise NotImplementedError

    def start(self) -> None:
        """Flush every ``interval`` from now on (until :meth:`close`)."""
        self._task = asyncio.get_running_loop().create_task(
            self._loop(), name=f"keyguard-{self._name}"
        )

    async def close(self) -> None:
        """Stop the loop and write what is still counted."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._flush_logged()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self._flush_logged()

    async def _flush_logged(self) -> None:
        try:
            await self.flush()
        except Exception as exc:  # a flush that fails keeps its counts for the next one
            log.warning("%s failed, will retry: %s", self._name, type(exc).__name__)
