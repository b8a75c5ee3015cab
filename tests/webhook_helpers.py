"""Helpers shared by the webhook and upload tests: a scriptable loopback receiver and
small database readers."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import select

from keyguard.runtime import Runtime
from keyguard.webhooks import endpoints
from keyguard.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookMessage
from keyguard.webhooks.ssrf import ResolutionFailed


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    gate: asyncio.Event | None = None  # answer only once this is set


class FakeDns:
    """A resolver for tests: names in ``answers`` resolve to those addresses, any other
    name does not resolve (NXDOMAIN). Records every name asked."""

    def __init__(self, answers: dict[str, list[str]] | None = None) -> None:
        self.answers = dict(answers or {})
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host not in self.answers:
            raise ResolutionFailed(f"{host} did not resolve")
        return self.answers[host]


class Receiver:
    """A real HTTP/1.1 server on 127.0.0.1 answering per path; records every request."""

    def __init__(self) -> None:
        self.port = 0
        self.requests: list[Seen] = []
        self.replies: dict[str, Reply | Callable[[Seen], Reply]] = {}
        self.arrived = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def on(self, path: str, reply: Reply | Callable[[Seen], Reply]) -> str:
        self.replies[path] = reply
        return self.url(path)

    def seen(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.path == path]

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            _, path, _ = lines[0].split(" ", 2)
            headers: dict[str, str] = {}
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            seen = Seen(path, headers, body)
            self.requests.append(seen)
            self.arrived.set()
            reply = self.replies.get(path, Reply())
            if callable(reply):
                reply = reply(seen)
            if reply.gate is not None:
                await reply.gate.wait()
            extra = "".join(f"{k}: {v}\r\n" for k, v in reply.headers.items())
            writer.write(
                f"HTTP/1.1 {reply.status} X\r\nContent-Length: {len(reply.body)}\r\n"
                f"Connection: close\r\n{extra}\r\n".encode()
                + reply.body
            )
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


async def add_endpoint(
    runtime: Runtime, project_id: str, url: str, events: list[str] | None = None
) -> str:
    endpoint = await endpoints.create_endpoint(
        runtime, project_id, url=url, events=events or ["*"], description="", actor="test"
    )
    return endpoint.id


async def deliveries(runtime: Runtime) -> list[WebhookDelivery]:
    async with runtime.sessions() as s:
        rows = await s.execute(select(WebhookDelivery).order_by(WebhookDelivery.created_at))
        return list(rows.scalars())


async def attempts(runtime: Runtime, delivery_id: str) -> list[WebhookAttempt]:
    async with runtime.sessions() as s:
        rows = await s.execute(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == delivery_id)
            .order_by(WebhookAttempt.attempt_number)
        )
        return list(rows.scalars())


async def messages(runtime: Runtime) -> list[WebhookMessage]:
    async with runtime.sessions() as s:
        rows = await s.execute(select(WebhookMessage).order_by(WebhookMessage.created_at))
        return list(rows.scalars())


# The smallest bytes the upload sniffer takes for a PNG.
PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452") + b"\x00" * 64


async def create_project_key(
    client: httpx.AsyncClient, root: dict[str, str], project_id: str
) -> dict[str, Any]:
    """A live project key made over the API (the response: ``key`` is shown once)."""
    r = await client.post(
        f"/v1/projects/{project_id}/keys",
        json={"name": "app", "environment": "live"},
        headers=root,
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def project_key(client: httpx.AsyncClient, root: dict[str, str], project_id: str) -> str:
    """The full key of a new live project key."""
    return str((await create_project_key(client, root, project_id))["key"])
