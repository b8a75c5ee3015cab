"""CONTRACT §11: with Redis configured and unreachable, a check that needs shared state
answers 503 ``state_unavailable`` (fail closed), unless ``KEYGUARD_STATE_FAILURE=open``.

Redis here is really unreachable: a port nothing listens on, or a listener that
accepts connections and never answers (a hung Redis must not hang requests).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from keyguard.accounts.service import init_admin
from keyguard.app import create_asgi
from keyguard.errors import StateUnavailable
from keyguard.keys import service as keys
from keyguard.runtime import Runtime
from keyguard.settings import Settings
from keyguard.state.redis import redis_state


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends


@pytest.fixture
async def silent_redis() -> AsyncIterator[str]:
    """Accepts connections, reads what comes, never answers."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        while await reader.read(4096):
            pass

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"redis://127.0.0.1:{port}/0"
    for writer in held:
        writer.close()
    server.close()


async def _runtime(tmp_path: Path, redis_url: str, failure: str) -> Runtime:
    settings = Settings(
        data_dir=tmp_path / "data",
        redis_url=redis_url,
        state_failure=failure,  # type: ignore[arg-type]
        state_timeout_seconds=0.3,
        header_prefix="APTR",
        key_prefix="aptr",
    )
    return await Runtime.start(settings)


async def _rate_limited_key(runtime: Runtime) -> tuple[str, dict[str, str]]:
    admin = await init_admin(runtime, email="a@example.com", password="correct horse battery")
    spec = keys.KeySpec(name="limited", rate_limit=(100, 60))
    created = await keys.create_key(runtime, admin.project.project.id, spec, actor="t")
    return created.issued.id, {"Authorization": f"Bearer {created.issued.key}"}


async def _poll(runtime: Runtime, headers: dict[str, str]) -> httpx.Response:
    transport = httpx.ASGITransport(app=create_asgi(runtime), client=("203.0.113.7", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c:
        return await c.post("/v1/sessions", json={"delivery_mode": "poll"}, headers=headers)


@pytest.mark.parametrize("unreachable", ["closed port", "silent"])
async def test_an_unreachable_redis_fails_closed_with_a_stable_code(
    tmp_path: Path, silent_redis: str, unreachable: str
) -> None:
    url = f"redis://127.0.0.1:{_closed_port()}/0" if unreachable == "closed port" else silent_redis
    runtime = await _runtime(tmp_path, url, "closed")
    try:
        _, headers = await _rate_limited_key(runtime)
        refused: list[Any] = []
        runtime.engine.on_refusal = lambda *args: refused.append(args)
        started = asyncio.get_running_loop().time()
        r = await _poll(runtime, headers)
        assert asyncio.get_running_loop().time() - started < 5  # bounded, not hung
        assert r.status_code == 503
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "state_unavailable"
        assert "127.0.0.1" not in r.text  # where Redis lives is nobody's business
        # The server's trouble, not the key's: not audited as a refusal of the key.
        assert refused == []
    finally:
        await runtime.close()


async def test_open_failure_lets_the_request_through(tmp_path: Path) -> None:
    runtime = await _runtime(tmp_path, f"redis://127.0.0.1:{_closed_port()}/0", "open")
    try:
        _, headers = await _rate_limited_key(runtime)
        r = await _poll(runtime, headers)
        assert r.status_code == 201, r.text
    finally:
        await runtime.close()


async def test_each_store_fails_closed(silent_redis: str) -> None:
    state = redis_state(silent_redis, timeout=0.2)
    try:
        calls = [
            state.rate_limiter.hit("b", 10, 60),
            state.rate_limiter.blocked("b", 10, 60),
            state.rate_limiter.peek("b", 10, 60),
            state.replay_guard.first_use("t", 60),
            state.ledger.spend((("t", 60),), "b", 10, 60),
            state.vault.put("n", "v", 60),
            state.vault.take("n"),
            state.vault.count("n", 60),
        ]
        for call in calls:
            with pytest.raises(StateUnavailable):
                await call
    finally:
        await state.close()


async def test_each_store_passes_when_open(silent_redis: str) -> None:
    state = redis_state(silent_redis, failure="open", timeout=0.2)
    try:
        assert (await state.rate_limiter.hit("b", 10, 60)).allowed
        assert await state.rate_limiter.blocked("b", 10, 60) == 0
        assert await state.replay_guard.first_use("t", 60) is True
        passed = await state.ledger.spend((("t", 60),), "b", 10, 60)
        assert passed.refused is None
        assert passed.rate is not None
        assert passed.rate.allowed
        assert await state.vault.count("n", 60) == 0
        # Nothing can be kept: what needed a stored value finds none (refused).
        await state.vault.put("n", "v", 60)
        assert await state.vault.take("n") is None
    finally:
        await state.close()
