"""``GET /readyz`` (CONTRACT §11): the database, its migrations and Redis when
configured; 200, or 503 problem+json naming what is down. No credentials."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
from sqlalchemy import text

from keyguard.app import create_asgi
from keyguard.runtime import Runtime
from keyguard.settings import Settings
from keyguard.storage.db import create_engine


async def _get(runtime: Runtime) -> httpx.Response:
    transport = httpx.ASGITransport(app=create_asgi(runtime), client=("203.0.113.7", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c:
        return await c.get("/readyz")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_ready_without_credentials(client: httpx.AsyncClient) -> None:
    r = await client.get("/readyz")
    assert (r.status_code, r.json()) == (200, {"status": "ready"})
    assert r.headers["cache-control"] == "no-store"


async def test_a_database_behind_its_migrations_is_not_ready(runtime: Runtime) -> None:
    async with runtime.db.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = 'older'"))
    r = await _get(runtime)
    assert r.status_code == 503
    assert r.headers["content-type"].startswith("application/problem+json")
    assert (r.json()["code"], r.json()["down"]) == ("not_ready", ["migrations"])


async def test_a_database_that_does_not_answer_is_named_and_nothing_more(
    runtime: Runtime,
) -> None:
    answering = runtime.db
    url = f"postgresql+asyncpg://keyguard:s3cret@127.0.0.1:{_closed_port()}/keyguard"
    runtime.db = create_engine(url)
    try:
        r = await _get(runtime)
    finally:
        await runtime.db.dispose()
        runtime.db = answering
    assert r.status_code == 503
    assert (r.json()["code"], r.json()["down"]) == ("not_ready", ["database"])
    assert "s3cret" not in r.text
    assert "127.0.0.1" not in r.text


async def test_an_unreachable_redis_is_named(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        redis_url=f"redis://127.0.0.1:{_closed_port()}/0",
        state_timeout_seconds=0.5,
    )
    runtime = await Runtime.start(settings)
    try:
        r = await _get(runtime)
    finally:
        await runtime.close()
    assert r.status_code == 503
    assert (r.json()["code"], r.json()["down"]) == ("not_ready", ["redis"])
