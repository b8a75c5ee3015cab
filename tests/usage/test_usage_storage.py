"""Usage storage grows with time buckets, not requests; old minute and hour buckets go
with retention; a flush the database refuses loses nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from helpers import POLL_SESSION, bearer, create_key
from keyguard.retention.service import prune
from keyguard.runtime import Runtime
from keyguard.uploads.store import LocalFileStore
from keyguard.usage.models import UsageBucket


async def buckets(runtime: Runtime, key_id: str) -> dict[str, int]:
    async with runtime.sessions() as db:
        rows = await db.execute(
            select(UsageBucket.granularity, func.count())
            .where(UsageBucket.key_id == key_id)
            .group_by(UsageBucket.granularity)
        )
        return dict(rows.all())


async def test_many_requests_make_one_row_per_bucket(client, root_headers, project_id, runtime):
    key = await create_key(client, root_headers, project_id)
    for _ in range(25):
        await client.post("/v1/sessions", json=POLL_SESSION, headers=bearer(key["key"]))
    await runtime.usage.flush()
    assert await buckets(runtime, key["id"]) == {"minute": 1, "hour": 1, "day": 1}


async def test_old_minute_and_hour_buckets_are_pruned_and_days_stay(
    client, root_headers, project_id, runtime, clock
):
    key = await create_key(client, root_headers, project_id)
    await client.post("/v1/sessions", json=POLL_SESSION, headers=bearer(key["key"]))
    await runtime.usage.flush()
    store = LocalFileStore(runtime.settings.data_dir / "photos")
    clock.advance(runtime.settings.usage_minute_retention_days * 86400 + 120)
    assert (await prune(runtime, store)).usage_buckets >= 1  # the root key's too
    assert await buckets(runtime, key["id"]) == {"hour": 1, "day": 1}
    clock.advance(runtime.settings.usage_hour_retention_days * 86400)
    await prune(runtime, store)
    assert await buckets(runtime, key["id"]) == {"day": 1}
    usage = await client.get(
        f"/v1/keys/{key['id']}/usage",
        params={"granularity": "day", "from": "2000-01-01T00:00:00Z"},
        headers=root_headers,
    )
    assert usage.status_code == 422  # more than 2,000 days: the window must be narrower
    usage = await client.get(
        f"/v1/keys/{key['id']}/usage", params={"granularity": "day"}, headers=root_headers
    )
    assert usage.json()["last_used_at"] is not None


async def test_a_refused_flush_keeps_its_counts_for_the_next_one(
    client, root_headers, project_id, runtime
):
    key = await create_key(client, root_headers, project_id)
    for _ in range(12):
        await client.post("/v1/sessions", json=POLL_SESSION, headers=bearer(key["key"]))
    # The database refuses the write (the table is not there for a moment).
    async with runtime.transaction() as db:
        await db.execute(text("ALTER TABLE usage_buckets RENAME TO usage_buckets_away"))
    with pytest.raises(Exception, match="usage_buckets"):
        await runtime.usage.flush()
    async with runtime.transaction() as db:
        await db.execute(text("ALTER TABLE usage_buckets_away RENAME TO usage_buckets"))
    for _ in range(3):
        await client.post("/v1/sessions", json=POLL_SESSION, headers=bearer(key["key"]))
    await runtime.usage.flush()
    reply = await client.get(f"/v1/keys/{key['id']}/usage", headers=root_headers)
    assert reply.json()["totals"]["requests"] == 15
