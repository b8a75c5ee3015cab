"""A periodic job runs with the app, survives its own failures and stops with it."""

from __future__ import annotations

import asyncio

import pytest

from keyguard.periodic import periodic


async def test_a_job_runs_at_start_and_again_and_survives_its_failures(caplog):
    runs: list[int] = []
    fourth = asyncio.Event()

    async def job() -> None:
        runs.append(len(runs))
        if len(runs) == 2:
            raise RuntimeError("the database is away")
        if len(runs) == 4:
            fourth.set()

    async with periodic(job, every=0.01, name="test job"):
        await asyncio.wait_for(fourth.wait(), timeout=5)
    stopped_at = len(runs)
    await asyncio.sleep(0.05)
    assert len(runs) == stopped_at  # stopped with the context
    assert "test job failed: RuntimeError" in caplog.text


@pytest.mark.parametrize("at_start", [True, False])
async def test_at_start_decides_whether_the_first_run_waits(at_start):
    runs: list[float] = []

    async def job() -> None:
        runs.append(asyncio.get_running_loop().time())

    async with periodic(job, every=30, name="slow job", at_start=at_start):
        await asyncio.sleep(0.05)
    assert len(runs) == (1 if at_start else 0)
