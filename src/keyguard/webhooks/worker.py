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
        self._outcomes: list[tuple[Job, AttemptResult, anyio.Event]] = []
        self._flush_lock = anyio.Lock()
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
                        started = await self._claim_and_start(tg)
                        if not started:
                            await self._idle()
        finally:
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
        """Claim what is due now and deliver it all; returns the number of attempts."""
        total = 0
        own_pool = self._pool is None
        if own_pool:
            self._pool = SenderPool()
        try:
            async with anyio.create_task_group() as tg:
                total = await self._claim_and_start(tg)
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

    async def _claim_and_start(self, tg: anyio.abc.TaskGroup) -> int:
        busy = sum(self._in_flight.values())
        free = self.concurrency - busy
        # Claim in batches: waiting for a quarter of the slots to free up means one claim
        # transaction per several deliveries instead of one each.
        if free <= 0 or (busy and free < max(1, self.concurrency // 4)):
            return 0
        try:
            if not self._more_due and not await delivery.any_due(self.ctx):
                return 0
            claims = await delivery.claim_due(
                self.ctx,
                limit=free,
                in_flight=self._in_flight,
                per_destination=self.per_destination,
                lease_seconds=self.lease_seconds,
            )
        except Exception as exc:  # the database is down or busy: try again later
            log.error("webhook_claim_failed", error_type=type(exc).__name__)
            self._more_due = False
            return 0
        self._more_due = len(claims) == free
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
                self._done(claim)
            else:
                tg.start_soon(self._deliver, job)
        return len(claims)

    async def _idle(self) -> None:
        self._wake = anyio.Event()
        with anyio.move_on_after(self.poll_interval):
            await self._wake.wait()

    async def _record(self, job: Job, result: AttemptResult) -> None:
        """Write this outcome, batched with any that finished meanwhile: the first task
        to get the lock writes every queued outcome in one transaction."""
        done = anyio.Event()
        self._outcomes.append((job, result, done))
        async with self._flush_lock:
            if done.is_set():
                return  # an earlier flush wrote it
            batch, self._outcomes = self._outcomes, []
            try:
                await delivery.finish_many(self.ctx, [(j, r) for j, r, _ in batch], self.rng)
            finally:
                # On error the batch's leases expire and the deliveries are tried again.
                for *_, flushed in batch:
                    flushed.set()

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
            await self._record(job, result)
        except Exception as exc:  # the lease expires and another round retries it
            log.error(
                "webhook_delivery_crashed",
                delivery_id=claim.delivery_id,
                error_type=type(exc).__name__,
            )
        except BaseException:  # cancelled (stop): run() releases the lease
            self._done(claim, keep_lease=True)
            raise
        self._done(claim)

    def _done(self, claim: Claim, *, keep_lease: bool = False) -> None:
        if not keep_lease:
            self._claims.pop(claim.delivery_id, None)
        self._in_flight[claim.destination] -= 1
        if self._in_flight[claim.destination] <= 0:
            del self._in_flight[claim.destination]
        self._wake.set()


__all__ = ["DeliveryWorker"]
