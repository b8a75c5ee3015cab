"""The sender's pool: keep-alive per (partition, host, checked IP, port), and a short DNS
cache that only ever serves answers which pass the same check as a fresh resolution."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from keyguard.webhooks.sender import SenderPool, send_webhook

LOOPBACK = [ipaddress.ip_network("127.0.0.0/8")]
ONLY_2 = [ipaddress.ip_network("127.0.0.2/32")]
BODY = b'{"type":"key.created"}'


@dataclass
class KeepAliveReceiver:
    """Answers every request on a connection without closing it (HTTP/1.1 keep-alive)."""

    host: str = "127.0.0.1"
    port: int = 0
    connections: int = 0
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # (local, host, path)
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def url(self, path: str, host: str | None = None) -> str:
        return f"http://{host or self.host}:{self.port}{path}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                _, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                await reader.readexactly(int(headers.get("content-length", "0")))
                local = writer.get_extra_info("sockname")[0]
                self.requests.append((local, headers["host"], path))
                body = b"A" * 100_000 if path == "/big" else b"ok"
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


@pytest.fixture
async def keepalive() -> AsyncIterator[KeepAliveReceiver]:
    r = KeepAliveReceiver()
    await r.start()
    yield r
    await r.close()


@pytest.fixture
async def pool() -> AsyncIterator[SenderPool]:
    p = SenderPool(clock=FakeClock())
    yield p
    await p.aclose()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def scripted(*answers: str, calls: list[str] | None = None):
    """A resolver answering from a script, one answer per call, repeating the last."""
    script = list(answers)

    async def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        return [script.pop(0) if len(script) > 1 else script[0]]

    return resolve


# ---- keep-alive -------------------------------------------------------------------------


async def test_a_pool_reuses_one_connection(keepalive, pool) -> None:
    for _ in range(3):
        result = await send_webhook(
            keepalive.url("/ok"), BODY, {}, allow_private=LOOPBACK, pool=pool
        )
        assert result.success
    assert (keepalive.connections, len(keepalive.requests)) == (1, 3)


async def test_without_a_pool_every_attempt_connects_afresh(keepalive) -> None:
    for _ in range(3):
        assert (await send_webhook(keepalive.url("/ok"), BODY, {}, allow_private=LOOPBACK)).success
    assert keepalive.connections == 3


async def test_hosts_and_partitions_never_share_a_connection(keepalive, pool) -> None:
    # Two names pinned to the same IP: a connection opened (and, over https, verified)
    # for one name is never used for the other.
    resolver = scripted("127.0.0.1")
    for host, partition in [("a.example", "x"), ("b.example", "x"), ("a.example", "y")] * 2:
        result = await send_webhook(
            keepalive.url("/ok", host=host), BODY, {}, allow_private=LOOPBACK,
            resolver=resolver, pool=pool, partition=partition,
        )  # fmt: skip
        assert result.success
    assert keepalive.connections == 3
    assert [h for _, h, _ in keepalive.requests[:2]] == [
        f"a.example:{keepalive.port}",
        f"b.example:{keepalive.port}",
    ]


async def test_a_response_cut_at_the_limit_drops_its_connection(keepalive, pool) -> None:
    url = keepalive.url("/big")
    for _ in range(2):
        result = await send_webhook(
            url, BODY, {}, allow_private=LOOPBACK, max_response_bytes=16, pool=pool
        )
        assert (result.status_code, len(result.response_excerpt)) == (200, 16)
    assert keepalive.connections == 2  # the half-read connection went away


async def test_idle_pools_are_bounded(keepalive) -> None:
    pool = SenderPool(max_pools=2, clock=FakeClock())
    try:
        for partition in "abcde":
            result = await send_webhook(
                keepalive.url("/ok"), BODY, {}, allow_private=LOOPBACK, pool=pool,
                partition=partition,
            )  # fmt: skip
            assert result.success
            assert pool.open_pools <= 2
    finally:
        await pool.aclose()


# ---- the DNS cache ------------------------------------------------------------------------


async def test_a_checked_answer_is_reused_for_a_while(keepalive) -> None:
    clock = FakeClock()
    pool = SenderPool(dns_ttl=30, clock=clock)
    calls: list[str] = []
    resolver = scripted("127.0.0.1", calls=calls)
    url = keepalive.url("/ok", host="hooks.example")
    try:
        for _ in range(3):
            assert (
                await send_webhook(
                    url, BODY, {}, allow_private=LOOPBACK, resolver=resolver, pool=pool
                )
            ).success
        assert calls == ["hooks.example"]
        clock.now += 30
        assert (
            await send_webhook(url, BODY, {}, allow_private=LOOPBACK, resolver=resolver, pool=pool)
        ).success
        assert calls == ["hooks.example"] * 2
    finally:
        await pool.aclose()


async def test_rebinding_is_only_seen_by_a_fresh_resolution_and_refused(keepalive) -> None:
    # A safe answer (127.0.0.2), then the attacker's (127.0.0.1). Within the TTL the
    # cached, checked answer is used; once it expires, the new answer is checked and
    # refused: nothing ever reaches 127.0.0.1.
    clock = FakeClock()
    pool = SenderPool(dns_ttl=30, clock=clock)
    safe = KeepAliveReceiver(host="127.0.0.2")
    await safe.start()
    calls: list[str] = []
    resolver = scripted("127.0.0.2", "127.0.0.1", calls=calls)
    url = safe.url("/ok", host="rebind.example")
    try:
        for _ in range(2):
            result = await send_webhook(
                url, BODY, {}, allow_private=ONLY_2, resolver=resolver, pool=pool
            )
            assert result.success
        clock.now += 31
        result = await send_webhook(
            url, BODY, {}, allow_private=ONLY_2, resolver=resolver, pool=pool
        )
        assert result.error == "ssrf_blocked"
        assert calls == ["rebind.example"] * 2
        assert {local for local, _, _ in safe.requests} == {"127.0.0.2"}
        assert keepalive.requests == []
    finally:
        await pool.aclose()
        await safe.close()


async def test_a_cached_answer_is_checked_against_the_current_allow_list(keepalive, pool) -> None:
    calls: list[str] = []
    resolver = scripted("127.0.0.1", calls=calls)
    url = keepalive.url("/ok", host="hooks.example")
    ok = await send_webhook(url, BODY, {}, allow_private=LOOPBACK, resolver=resolver, pool=pool)
    assert ok.success
    # The allow list shrank: the cached 127.0.0.1 is refused, not served.
    refused = await send_webhook(url, BODY, {}, allow_private=ONLY_2, resolver=resolver, pool=pool)
    assert refused.error == "ssrf_blocked"
    assert len(keepalive.requests) == 1
    # And a refused answer is dropped: the next attempt resolves again.
    await send_webhook(url, BODY, {}, allow_private=LOOPBACK, resolver=resolver, pool=pool)
    assert calls == ["hooks.example"] * 2


async def test_a_refused_answer_is_never_cached(keepalive, pool) -> None:
    calls: list[str] = []
    resolver = scripted("127.0.0.1", "127.0.0.2", calls=calls)
    url = keepalive.url("/ok", host="hooks.example")
    first = await send_webhook(url, BODY, {}, allow_private=ONLY_2, resolver=resolver, pool=pool)
    assert first.error == "ssrf_blocked"
    await send_webhook(url, BODY, {}, allow_private=ONLY_2, resolver=resolver, pool=pool)
    assert calls == ["hooks.example"] * 2


async def test_a_mixed_answer_is_refused_and_not_cached(pool) -> None:
    calls: list[str] = []

    async def mixed(host: str, port: int) -> list[str]:
        calls.append(host)
        return ["127.0.0.2", "127.0.0.1"]

    for _ in range(2):
        result = await send_webhook(
            "http://mixed.example:9/ok", BODY, {}, allow_private=ONLY_2, resolver=mixed, pool=pool
        )
        assert result.error == "ssrf_blocked"
    assert len(calls) == 2


async def test_a_connect_failure_forgets_the_answer(pool) -> None:
    calls: list[str] = []
    resolver = scripted("127.0.0.3", calls=calls)
    for _ in range(2):
        # Port 9 (discard) has no listener on loopback here.
        result = await send_webhook(
            "http://gone.example:9/", BODY, {}, allow_private=LOOPBACK, resolver=resolver, pool=pool
        )
        assert result.error == "connect_failed"
    assert calls == ["gone.example"] * 2
