"""Webhook deliveries per second through the outbox and worker, against a raw httpx loop.

    .venv/bin/python bench/webhooks.py [--deliveries 2000] [--concurrency 32] [--postgres URL]

One loopback receiver (uvicorn, separate process, answers 200 at once) serves both:

- **raw httpx**: ``concurrency`` tasks POSTing signed bodies through one shared
  ``httpx.AsyncClient`` (keep-alive). Note that httpcore's pool slows down with many
  requests in flight on one client, so this is not the ceiling it looks like;
- **raw httpx, a keep-alive client per endpoint**: the same split over ``endpoints``
  clients (4 in flight each), as the worker's sender pools connections per destination --
  the fairer ceiling;
- **raw httpx, new connection each**: the same, one client per request (what the sender
  did before it kept connections alive per destination and checked IP);
- **outbox + worker**: deliveries already written to the outbox (SQLite under a temp dir,
  or PostgreSQL) claimed, signed, sent with the SSRF-safe sender and recorded (attempt row,
  status) by the real :class:`DeliveryWorker`. Events fan out to ``endpoints`` endpoints, as
  the per-endpoint cap (4 in flight) would otherwise bound a single one.

The ratio (outbox / raw) is the figure to watch; absolute rates depend on the machine.
From ``bench/run.py``: ``rows += asyncio.run(bench.webhooks.measure())`` (a list of Rows).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

if __package__ in (None, ""):  # `python bench/webhooks.py`: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from sqlalchemy import func, select

from bench.report import Row, render
from keyguard.accounts.service import init_admin
from keyguard.clock import utc_from_ts
from keyguard.runtime import Runtime
from keyguard.server.heap import freeze_startup_objects
from keyguard.settings import Settings
from keyguard.webhooks import endpoints
from keyguard.webhooks.models import WebhookDelivery
from keyguard.webhooks.outbox import enqueue
from keyguard.webhooks.signing import new_webhook_secret, signature_headers
from keyguard.webhooks.worker import DeliveryWorker

SECTION = "webhooks"
_RECEIVER = """
import sys, uvicorn
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
            access_log=False, http="httptools", loop="uvloop")
"""
BODY = (
    b'{"id":"msg_bench","type":"key.created","timestamp":"2026-01-01T00:00:00Z",'
    b'"data":{"key_id":"aptr_live_bench","actor":"bench","occurred_at":"2026-01-01T00:00:00Z"}}'
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def receiver() -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-c", _RECEIVER, str(port)])
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


async def raw_httpx(url: str, n: int, concurrency: int, *, reuse: bool, clients: int = 1) -> float:
    """Deliveries per second of a plain signed-POST loop (``clients`` keep-alive clients
    shared round-robin by the tasks when ``reuse``)."""
    secret = new_webhook_secret()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)
    ssl_context = httpx.create_ssl_context()
    shared = [
        httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency)) for _ in range(clients)
    ]

    async def one(client: httpx.AsyncClient, i: int) -> None:
        headers = signature_headers([secret], f"msg_{i}", int(time.time()), BODY, "Keyguard")
        r = await client.post(url, content=BODY, headers=headers)
        r.raise_for_status()

    async def run(task: int) -> None:
        while not queue.empty():
            i = queue.get_nowait()
            if reuse:
                await one(shared[task % clients], i)
            else:  # the CA bundle is loaded once, as the sender does
                async with httpx.AsyncClient(verify=ssl_context) as fresh:
                    await one(fresh, i)

    started = time.perf_counter()
    await asyncio.gather(*(run(t) for t in range(concurrency)))
    elapsed = time.perf_counter() - started
    for client in shared:
        await client.aclose()
    return n / elapsed


@contextlib.asynccontextmanager
async def fresh_database(server: str) -> AsyncIterator[str]:
    """A new, empty database on the PostgreSQL server of ``server`` (a URL), dropped after:
    every run starts from nothing, and none leaves rows behind for the next."""
    import asyncpg  # only with --postgres

    dsn = server.replace("postgresql+asyncpg://", "postgresql://")
    name = f"kg_bench_{os.getpid()}_{int(time.time())}"
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        try:
            yield server.rsplit("/", 1)[0] + "/" + name
        finally:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def outbox_runtime(postgres: str | None) -> AsyncIterator[Runtime]:
    async with contextlib.AsyncExitStack() as stack:
        if postgres:
            postgres = await stack.enter_async_context(fresh_database(postgres))
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        settings = Settings(
            data_dir=Path(tmp),
            database_url=postgres,
            master_key="B" * 43 + "=" if postgres else None,
            webhook_allow_private=["127.0.0.0/8"],
        )
        runtime = await Runtime.start(settings)
        freeze_startup_objects()  # as `keyguard serve` does once started
        try:
            yield runtime
        finally:
            await runtime.close()


async def outbox_worker(
    url: str, n: int, concurrency: int, n_endpoints: int, postgres: str | None
) -> tuple[float, float]:
    """(deliveries per second, events enqueued per second) through the real outbox."""
    async with outbox_runtime(postgres) as rt:
        admin = await init_admin(rt, email="bench@example.com", password="bench-password-1")
        project = admin.project.project.id
        for i in range(n_endpoints):
            await endpoints.create_endpoint(
                rt, project, url=f"{url}/e{i}", events=["*"], description="", actor="bench"
            )
        # A first round, untimed, as the raw loops' warm-up run: the receiver and this
        # process's caches (compiled statements) see traffic before anything is timed.
        warm = await _enqueue(rt, project, max(1, WARM_DELIVERIES // n_endpoints))
        await _deliver_all(rt, concurrency, warm * n_endpoints)
        events = max(1, n // n_endpoints)
        started = time.perf_counter()
        await _enqueue(rt, project, events)
        enqueue_rate = events / (time.perf_counter() - started)
        total = (warm + events) * n_endpoints
        started = time.perf_counter()
        await _deliver_all(rt, concurrency, total)
        return events * n_endpoints / (time.perf_counter() - started), enqueue_rate


WARM_DELIVERIES = 200


async def _enqueue(rt: Runtime, project: str, events: int) -> int:
    batch = 100
    for start in range(0, events, batch):
        async with rt.transaction() as session:
            for i in range(start, min(events, start + batch)):
                await enqueue(
                    session,
                    project_id=project,
                    event_type="key.created",
                    data={"key_id": f"aptr_live_{i}", "actor": "bench"},
                    at=utc_from_ts(rt.clock.now()),
                )
    return events


async def _deliver_all(rt: Runtime, concurrency: int, succeeded: int) -> None:
    """Run a fresh worker (new connections, as each raw loop has new clients) until
    ``succeeded`` deliveries in all have succeeded."""
    worker = DeliveryWorker(rt, concurrency=concurrency, poll_interval=0.01)
    async with worker.running():
        # Polled, but seldom: each count is work in the worker's own process.
        while await _succeeded(rt) < succeeded:  # noqa: ASYNC110 - polls the database
            await asyncio.sleep(0.05)


async def _succeeded(rt: Runtime) -> int:
    async with rt.sessions() as session:
        query = select(func.count()).where(WebhookDelivery.status == "succeeded")
        return int((await session.execute(query)).scalar_one())


async def measure(
    deliveries: int = 2000,
    concurrency: int = 32,
    n_endpoints: int = 8,
    postgres: str | None = None,
) -> list[Row]:
    """The rows for bench/run.py (or this script's own table)."""
    db = "PostgreSQL" if postgres else "SQLite"
    freeze_startup_objects()  # one policy for the whole process: raw loops and outbox
    with receiver() as url:
        await raw_httpx(url + "/warm", 200, concurrency, reuse=True)  # warm both sides
        raw = await raw_httpx(url + "/raw", deliveries, concurrency, reuse=True)
        split = await raw_httpx(
            url + "/split", deliveries, concurrency, reuse=True, clients=n_endpoints
        )
        fresh = await raw_httpx(url + "/fresh", deliveries, concurrency, reuse=False)
        outbox, enqueued = await outbox_worker(url, deliveries, concurrency, n_endpoints, postgres)
    note = f"{deliveries} deliveries, {concurrency} in flight"
    return [
        Row(SECTION, "raw httpx POST loop (keep-alive)", raw, "deliv/s", note),
        Row(SECTION, "raw httpx POST loop (keep-alive, a client per endpoint)", split,
            "deliv/s", f"{note}, {n_endpoints} clients"),
        Row(SECTION, "raw httpx POST loop (new connection each)", fresh, "deliv/s", note),
        Row(
            SECTION,
            f"outbox + worker ({db})",
            outbox,
            "deliv/s",
            f"{n_endpoints} endpoints, claim+sign+send+record",
        ),
        Row(SECTION, "outbox / raw keep-alive", outbox / raw, "ratio"),
        Row(SECTION, "outbox / raw keep-alive, a client per endpoint", outbox / split, "ratio"),
        Row(SECTION, "outbox / raw new connection", outbox / fresh, "ratio"),
        Row(SECTION, f"events written to the outbox ({db})", enqueued, "events/s",
            f"{n_endpoints} deliveries each, 100 per transaction"),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Webhook delivery throughput (outbox vs raw).")
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--endpoints", type=int, default=8)
    parser.add_argument(
        "--postgres",
        default=os.environ.get("KEYGUARD_BENCH_POSTGRES_URL"),
        help="postgresql+asyncpg://... (default: SQLite in a temp dir)",
    )
    args = parser.parse_args(argv)
    rows = asyncio.run(measure(args.deliveries, args.concurrency, args.endpoints, args.postgres))
    print(render(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
