"""Two instances sharing one database and Redis: their counts add up exactly, and an
anomaly both of them see is reported once."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from helpers import POLL_SESSION, bearer, create_key, redis_url
from keyguard.app import create_asgi
from keyguard.runtime import Runtime
from keyguard.settings import Settings
from keyguard.usage.anomalies import check_counts

pytestmark = pytest.mark.redis


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"redis_url": redis_url()})


async def test_two_instances_count_exactly_and_report_an_anomaly_once(
    settings, clock, client, root_headers, project_id, runtime
):
    key = await create_key(client, root_headers, project_id, ip_allowlist=["10.0.0.0/8"])
    other = await Runtime.start(settings, clock=clock)
    try:
        transport = httpx.ASGITransport(app=create_asgi(other), client=("198.51.100.1", 1))
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c2:
            sent = [(c2, 25), (client, 15)]
            await asyncio.gather(
                *(
                    c.post("/v1/sessions", json=POLL_SESSION, headers=bearer(key["key"]))
                    for c, n in sent
                    for _ in range(n)
                )
            )
        await asyncio.gather(runtime.usage.flush(), other.usage.flush())
        reported = await asyncio.gather(check_counts(runtime), check_counts(other))
        assert sorted(reported) == [0, 1]  # the replay store in Redis decides who reports
    finally:
        await other.close()
    usage = await client.get(f"/v1/keys/{key['id']}/usage", headers=root_headers)
    assert usage.json()["totals"]["requests"] == 40
    assert usage.json()["totals"]["by_code"] == {"ip_not_allowed": 40}
