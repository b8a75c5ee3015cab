"""The delivery worker: claims due deliveries from the outbox and sends them.

Bounded in two ways so a slow endpoint cannot starve the others: at most
``concurrency`` attempts in flight in all, and at most ``per_destination`` towards any
one endpoint (or upload session URL). Claims run ahead of sending by one batch: each
destination may hold twice its cap (sending, or prepared and waiting for a slot), so a
slot that frees up starts the next attempt at once instead of waiting for the database.
A destination holding that much is left out of the next claim, so its backlog waits in
the database, not in this process.

Each round of the database is one transaction: it records the attempts that finished
and claims the next batch.

    async with DeliveryWorker(runtime).running():   # the app's lifespan
        ...   # on exit, in-flight attempts finish or their leases are released

or ``await worker.run_once()`` / ``await worker.drain()`` to deliver what is due now.
"""

from __future__ import annotations

import contextlib
import random
import ssl
import time
from collections import Counter, deque
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
# How long an outcome may wait to be written with the next claim before it gets a
# round of its own (the lease keeps the delivery ours meanwhile).
RECORD_WITHIN = 0.05


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
        # The lease outlives a wait for a slot (at most one attempt of the same
        # destination: each holds at most twice its cap), the attempt itself (bounded by
        # the timeout) and its bookkeeping; after a crash, deliveries come back this long
        # after their claim at most.
        self.lease_seconds = 2 * self.timeout + 5
        self.resolver = resolver
        self.ssl_context = ssl_context
        self.rng = rng or random.SystemRandom()
        self._in_flight: Counter[str] = Counter()  # attempts being sent, per destination
        self._ready: dict[str, deque[Job]] = {}  # prepared, waiting for a slot
        self._claims: dict[str, Claim] = {}  # claimed and not yet recorded
        self._tg: anyio.abc.TaskGroup | None = None
        self._wake = anyio.Event()
        self._stopping = False
        self._stopped = anyio.Event()
        self._cancel: anyio.CancelScope | None = None
        self._started = False
        # Attempts sent and not yet recorded: the next round writes them.
        self._outcomes: list[tuple[Job, AttemptResult]] = []
        self._first_outcome_at = 0.0
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
            self._tg = None
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
        limit = self._claimable() if tg is not None else 0
        if not limit and tg is not None and not self._record_due():
            return 0  # the outcomes wait for a round that also claims
        outcomes, self._outcomes = self._outcomes, []
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
                in_flight=self._held(),
                per_destination=2 * self.per_destination,
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

    def _record_due(self) -> bool:
        """Whether the outcomes are worth a round of their own: a round costs about the
        same for one row as for dozens, so they wait a little for one that also claims."""
        if not self._outcomes:
            return False
        return (
            len(self._outcomes) >= max(1, self.concurrency // 2)
            or time.monotonic() - self._first_outcome_at >= RECORD_WITHIN
        )

    def _claimable(self) -> int:
        # Claimed and not yet recorded, whatever its stage: one batch ahead of sending,
        # so a slow database cannot let claims run far ahead of what is written.
        free = 2 * self.concurrency - len(self._claims)
        # Claim in batches: waiting for half a batch of room means one round per several
        # deliveries instead of one each.
        if free <= 0 or (self._claims and free < max(1, self.concurrency // 2)):
            return 0
        return free

    def _held(self) -> Counter[str]:
        held = Counter(self._in_flight)
        for destination, waiting in self._ready.items():
            held[destination] += len(waiting)
        return held

    async def _start(self, tg: anyio.abc.TaskGroup, claims: list[Claim]) -> None:
        for claim in claims:
            self._claims[claim.delivery_id] = claim
        try:
            # The claim read everything: signing needs no further query.
            jobs = await delivery.prepare_many(self.ctx, claims, rng=self.rng)
        except Exception as exc:  # the leases expire and another round retries them
            log.error("webhook_prepare_failed", error_type=type(exc).__name__)
            jobs = [None] * len(claims)
        for claim, job in zip(claims, jobs, strict=True):
            if job is None:
                self._claims.pop(claim.delivery_id, None)
            else:
                self._ready.setdefault(claim.destination, deque()).append(job)
        self._tg = tg
        self._dispatch()

    def _dispatch(self) -> None:
        """Start waiting attempts while their destination and the worker have room."""
        if self._tg is None or self._stopping:
            return
        busy = sum(self._in_flight.values())
        for destination, waiting in list(self._ready.items()):
            while waiting and busy < self.concurrency:
                if self._in_flight[destination] >= self.per_destination:
                    break
                self._in_flight[destination] += 1
                busy += 1
                self._tg.start_soon(self._lane, waiting.popleft())
            if not waiting:
                del self._ready[destination]

    async def _idle(self) -> None:
        self._wake = anyio.Event()
        wait = min(self.poll_interval, RECORD_WITHIN) if self._outcomes else self.poll_interval
        with anyio.move_on_after(wait):
            await self._wake.wait()

    async def _lane(self, job: Job) -> None:
        """Send ``job``, then the next waiting attempt for the same destination, and so
        on: a slot passes straight to the next attempt."""
        destination = job.claim.destination
        try:
            next_job: Job | None = job
            while next_job is not None:
                await self._deliver(next_job)
                waiting = self._ready.get(destination)
                next_job = waiting.popleft() if waiting and not self._stopping else None
        finally:  # also when cancelled (stop): run() then releases the leases
            self._in_flight[destination] -= 1
            if self._in_flight[destination] <= 0:
                del self._in_flight[destination]
            self._dispatch()  # room for another destination's waiting attempts
            self._wake.set()

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
            return
        # The next round records it, batched with the others (the lease keeps the row
        # ours until then).
        if not self._outcomes:
            self._first_outcome_at = time.monotonic()
        self._outcomes.append((job, result))
        self._wake.set()


__all__ = ["DeliveryWorker"]
