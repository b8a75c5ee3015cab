"""Background jobs that run every so often for as long as the application does.

One copy of the loop every housekeeping task needs: start with the app, run the job (at
once or after the first interval), log and survive its failures (housekeeping must never
take the server down), stop cleanly with the app.

    async with periodic(prune_once, every=3600, name="retention"):
        ...  # the app's lifespan
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
