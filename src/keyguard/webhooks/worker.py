"""The delivery worker: claims due deliveries from the outbox and sends them.

Bounded in two ways so a slow endpoint cannot starve the others: at most
``concurrency`` attempts in flight in all, and at most ``per_destination`` towards any
one endpoint (or upload session URL). A destination at its cap is left out of the next
claim, so its backlog waits in the database, not in this process.

    async with DeliveryWorker(runtime).running():   # the app's lifespan
        ...   # on exit, in-flight attempts finish or their leases are released

or ``await worker.run_once()`` / ``await worker.drain()`` to deliver what is due now.
"""

from __future__ import annotations

import contextlib
import random
import ssl
from collections import Counter
from collections.abc import AsyncIterator

import anyio
import structlog

from keyguard.webhooks import delivery
from keyguard.webhooks.attempt import AttemptResult
from keyguard.webhooks.context import WebhookContext
from keyguard.webhooks.delivery import Claim, Job
from keyguard.webhooks.outbox import add_waker, remove_waker
from keyguard.webhooks.sender import SenderPool, send_webhook
from keyguard.webhooks.ssrf import Resolver

log = structlog.get_logger("keyguard.webhooks")

MAX_RESPONSE_BYTES = 4096


class DeliveryWorker:
    def __init__(
        self,
        ctx: WebhookContext,
        *,
        concurrency: int | None = None,
        per_destination: int = 4,
        poll_interval: float = 1.0,
        timeout: float | None = None,  # per attempt, passed to the sender
        resolver: Resolver | None = None,  # default: the context's webhook_resolver
        ssl_context: ssl.SSLContext | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.ctx = ctx
        self.concurrency = concurrency or ctx.settings.webhook_concurrency
        self.per_destination = per_destination
        self.poll_interval = poll_interval
        self.timeout = timeout or ctx.settings.webhook_timeout_seconds
        # The lease outlives a whole attempt (bounded by the timeout) and its bookkeeping;
        # after a crash, deliveries come back this long after their claim at most.
        self.lease_seconds = 2 * self.timeout + 5
        self.resolver = resolver
        self.ssl_context = ssl_context
        self.rng = rng or random.SystemRandom()
        self._in_flight: Counter[str] = Counter()
        self._claims: dict[str, Claim] = {}
        self._wake = anyio.Event()
        self._stopping = False
        self._stopped = anyio.Event()
        self._cancel: anyio.CancelScope | None = None
        self._started = False
        # Attempts sent and not yet recorded: the next round writes them.
        self._outcomes: list[tuple[Job, AttemptResult]] = []
        # Keep-alive connections per destination and checked DNS answers (30 s); one
        # per run (or per round when driven by run_once), closed when it ends.
        self._pool: SenderPool | None = None
        self._more_due = False  # the last claim was full: skip the any_due probe

    # ---- lifecycle --------------------------------------------------------------------

    def wake(self) -> None:
        """Look for work now (called after a commit that wrote to the outbox)."""
        self._wake.set()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[DeliveryWorker]:
        """Run in the background for the duration of the block."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self.run)
            try:
                yield self
            finally:
                await self.stop()

    async def run(self) -> None:
        """Deliver until :meth:`stop`; survives database errors by retrying later."""
        self._started = True
        add_waker(self.wake)
        self._pool = SenderPool()
        try:
            with anyio.CancelScope() as scope:
                self._cancel = scope
                async with anyio.create_task_group() as tg:
                    while not self._stopping:
                        if not await self._round(tg):
                            await self._idle()
        finally:
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await self._round(None)  # what finished while stopping is recorded
            remove_waker(self.wake)
            if self._claims:
                with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                    await delivery.release(self.ctx, list(self._claims.values()))
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await self._pool.aclose()
            self._pool = None
            self._stopped.set()

    async def stop(self, grace: float = 5.0) -> None:
        """Stop claiming; let attempts in flight finish for ``grace`` seconds, then cancel
        them (their leases are released, so nothing waits for expiry)."""
        self._stopping = True
        if not self._started:
            return
        self.wake()
        # The run loop ends at once; its task group then waits for attempts in flight.
        with anyio.move_on_after(grace):
            await self._stopped.wait()
        if not self._stopped.is_set() and self._cancel is not None:
            self._cancel.cancel()
            with anyio.move_on_after(grace):
                await self._stopped.wait()

    # ---- one round, also used directly by tests with an injected clock ------------------

    async def run_once(self) -> int:
        """Claim what is due now, deliver it all and record it; returns the number of
        attempts."""
        total = 0
        own_pool = self._pool is None
        if own_pool:
            self._pool = SenderPool()
        try:
            async with anyio.create_task_group() as tg:
                total = await self._round(tg)
            await self._round(None)
        finally:
            if own_pool and self._pool is not None:
                await self._pool.aclose()
                self._pool = None
        return total

    async def drain(self, max_rounds: int = 1000) -> int:
        """Run rounds until nothing is due (tests: retries wait for the clock to move)."""
        total = 0
        for _ in range(max_rounds):
            done = await self.run_once()
            if not done:
                break
            total += done
        return total

    # ---- internals ----------------------------------------------------------------------

    async def _round(self, tg: anyio.abc.TaskGroup | None) -> int:
        """Record the outcomes that came in and claim more (none without ``tg``), in one
        transaction; start the claimed attempts. Returns how many were claimed (plus
        recorded, so a round that only wrote counts as work)."""
        outcomes, self._outcomes = self._outcomes, []
        limit = self._claimable() if tg is not None else 0
        if not outcomes and not limit:
            return 0
        try:
            if (
                limit
                and not outcomes
                and not self._more_due
                and not await delivery.any_due(self.ctx)
            ):
                return 0
            claims = await delivery.record_and_claim(
                self.ctx,
                outcomes,
                self.rng,
                limit=limit,
                in_flight=self._in_flight,
                per_destination=self.per_destination,
                lease_seconds=self.lease_seconds,
            )
        except Exception as exc:  # the database is down or busy: try again later
            # Nothing was written: these leases expire and the deliveries are sent again.
            log.error("webhook_round_failed", error_type=type(exc).__name__)
            claims = []
        for job, _ in outcomes:
            self._claims.pop(job.claim.delivery_id, None)
        self._more_due = bool(limit) and len(claims) == limit
        if claims and tg is not None:
            await self._start(tg, claims)
        return len(claims) + len(outcomes)

    def _claimable(self) -> int:
        busy = sum(self._in_flight.values())
        # Sent but not yet recorded still counts against a second bound, so a slow
        # database cannot let claims run far ahead of what is written.
        free = min(self.concurrency - busy, 2 * self.concurrency - len(self._claims))
        # Claim in batches: waiting for half of the slots to free up means one claim per
        # several deliveries instead of one each.
        if free <= 0 or (busy and free < max(1, self.concurrency // 2)):
            return 0
        return free

    async def _start(self, tg: anyio.abc.TaskGroup, claims: list[Claim]) -> None:
        for claim in claims:
            self._in_flight[claim.destination] += 1
            self._claims[claim.delivery_id] = claim
        try:
            # The claim read everything: signing needs no further query.
            jobs = await delivery.prepare_many(self.ctx, claims, rng=self.rng)
        except Exception as exc:  # the leases expire and another round retries them
            log.error("webhook_prepare_failed", error_type=type(exc).__name__)
            jobs = [None] * len(claims)
        for claim, job in zip(claims, jobs, strict=True):
            if job is None:
                self._free_slot(claim)
                self._claims.pop(claim.delivery_id, None)
            else:
                tg.start_soon(self._deliver, job)

    async def _idle(self) -> None:
        self._wake = anyio.Event()
        with anyio.move_on_after(self.poll_interval):
            await self._wake.wait()

    async def _deliver(self, job: Job) -> None:
        claim = job.claim
        try:
            result = await send_webhook(
                job.url,
                job.body,
                job.headers,
                allow_private=self.ctx.settings.webhook_private_networks,
                timeout=self.timeout,
                max_response_bytes=MAX_RESPONSE_BYTES,
                resolver=self.resolver or self.ctx.webhook_resolver,
                ssl_context=self.ssl_context,
                pool=self._pool,
                partition=claim.destination,
            )
        except Exception as exc:  # the lease expires and another round retries it
            log.error(
                "webhook_delivery_crashed",
                delivery_id=claim.delivery_id,
                error_type=type(exc).__name__,
            )
            self._claims.pop(claim.delivery_id, None)
        else:
            # The next round records it, batched with the others (the lease keeps the
            # row ours until then).
            self._outcomes.append((job, result))
        finally:  # also when cancelled (stop): run() then releases the lease
            self._free_slot(claim)

    def _free_slot(self, claim: Claim) -> None:
        self._in_flight[claim.destination] -= 1
        if self._in_flight[claim.destination] <= 0:
            del self._in_flight[claim.destination]
        self._wake.set()


__all__ = ["DeliveryWorker"]
