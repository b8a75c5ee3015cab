"""What does the audit log's Merkle tree cost? (issue 10, defect 6)

    .venv/bin/python bench/audit_tree.py [--events 20000] [--repeats 50]

A fresh SQLite database (the embedded default). Appends are timed in one process, one
transaction per event as the services append them, alternating blocks of 500 with the
tree on and with the tree's append replaced by a no-op (the baseline: the hash chain
alone, as before). Then, on the log of ``--events`` events, the median of ``--repeats``:
signing a checkpoint, an inclusion proof, a consistency proof, and once, checking a kept
checkpoint against the whole log (``keyguard audit verify --checkpoint``). Nothing is
asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from keyguard.audit import checkpoints, tree
from keyguard.audit import service as audit
from keyguard.clock import utc_from_ts
from keyguard.runtime import Runtime
from keyguard.settings import Settings


def no_tree(*args: object) -> list[object]:
    return []


async def append_block(runtime: Runtime, n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        async with runtime.transaction() as session:
            await audit.record(
                session,
                at=utc_from_ts(runtime.clock.now()),
                actor="bench",
                action="bench.event",
                target=f"t{i}",
                data={"i": i},
            )
    return (time.perf_counter() - start) / n


async def median_ms(job, repeats: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        await job()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


async def main(events: int, repeats: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        # Two logs side by side: one with the tree, one whose tree append is a no-op (the
        # chain alone, as before), appended in alternating blocks so both see the same
        # machine load. Proofs are then taken on the first, whose tree is whole.
        logs = [await Runtime.start(Settings(data_dir=Path(tmp) / d)) for d in ("on", "off")]
        real_append = tree.append
        timings: dict[str, list[float]] = {"tree": [], "chain only": []}
        try:
            for _ in range(max(1, events // 500)):
                timings["tree"].append(await append_block(logs[0], 500))
                tree.append = no_tree  # type: ignore[assignment]
                try:
                    timings["chain only"].append(await append_block(logs[1], 500))
                finally:
                    tree.append = real_append  # type: ignore[assignment]
            base = statistics.median(timings["chain only"]) * 1e6
            with_tree = statistics.median(timings["tree"]) * 1e6
            runtime = logs[0]
            size = await checkpoints.tree_size(runtime)
            print(f"events: {size}")
            print(
                f"append (one transaction each): chain only {base:,.0f} µs, "
                f"with the tree {with_tree:,.0f} µs, ratio {with_tree / base:.3f}"
            )
            rng = random.Random(1)
            sign = await median_ms(lambda: checkpoints.sign_current(runtime), repeats)

            async def inclusion() -> None:
                await checkpoints.inclusion_proof(runtime, rng.randrange(size), size)

            async def consistency() -> None:
                await checkpoints.consistency_proof(runtime, rng.randrange(1, size), size)

            inc = await median_ms(inclusion, repeats)
            con = await median_ms(consistency, repeats)
            note = (await checkpoints.sign_current(runtime)).note
            start = time.perf_counter()
            async with runtime.sessions() as session:
                await checkpoints.verify_extends(session, note)
            check = time.perf_counter() - start
            print(f"sign a checkpoint: {sign:.2f} ms (median of {repeats})")
            print(f"inclusion proof: {inc:.2f} ms; consistency proof: {con:.2f} ms")
            print(f"verify a checkpoint against all {size} events: {check:.2f} s")
        finally:
            for log in logs:
                await log.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(main(args.events, args.repeats))
