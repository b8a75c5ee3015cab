"""A gateway with the seed-002 document in front of an upstream that echoes what it
received, for the ``--openapi`` tests (keys and access tokens alike)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from openapi_documents import BANKING_YAML
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from keyguard.accounts.service import init_admin
from keyguard.clock import FrozenClock
from keyguard.gateway import Gateway
from keyguard.gateway.openapi import parse_document, route_table
from keyguard.gateway.routes import RouteTable
from keyguard.keys import service as keys
from keyguard.runtime import Runtime
from keyguard.settings import Settings

PREFIX = "APTR"
ROUTES = route_table(parse_document(BANKING_YAML, "banking.yaml"))
JWT = "eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiJ1MSJ9.c2ln"  # not ours
# Every identity header a client might try to hand the upstream, in spellings servers fold.
FORGED = {
    "X-APTR-Key-Id": "forged",
    "X-APTR-Project-Id": "forged",
    "X-APTR-Scopes": "banking/admin",
    "X-APTR-Subject": "acct_admin",
    "X-APTR-Client-Id": "forged-client",
    "x_aptr_subject": "acct_admin",
    "X-APTR-Client_Id": "forged-client",
}
IDENTITY = {f"x-aptr-{name}" for name in ("key-id", "project-id", "scopes", "subject", "client-id")}


async def echo(request: Request) -> Response:
    return JSONResponse(
        {
            "path": request.url.path,
            "headers": [[k, v] for k, v in request.headers.items()],
            "body": (await request.body()).decode(),
        }
    )


UPSTREAM = Starlette(
    routes=[Route("/{rest:path}", echo, methods=["GET", "POST", "PUT", "DELETE", "HEAD"])]
)


class Env:
    def __init__(self, runtime: Runtime, project_id: str, account_id: str) -> None:
        self.runtime, self.project_id, self.account_id = runtime, project_id, account_id
        self.upstream_calls = 0

    def gateway(self, routes: RouteTable | None = ROUTES) -> Gateway:
        async def count(request: httpx.Request) -> None:
            self.upstream_calls += 1

        return Gateway(
            engine=self.runtime.engine,
            upstream="http://up/",
            header_prefix=PREFIX,
            routes=routes,
            client=httpx.AsyncClient(
                transport=httpx.ASGITransport(app=UPSTREAM),
                base_url="http://up",
                event_hooks={"request": [count]},
            ),
        )

    async def send(
        self, method: str, path: str, *, routes: RouteTable | None = ROUTES, **kw: Any
    ) -> httpx.Response:
        transport = httpx.ASGITransport(app=self.gateway(routes))
        async with httpx.AsyncClient(transport=transport, base_url="https://gw") as client:
            return await client.request(method, path, **kw)

    async def key(self, *scopes: str, rate_limit: tuple[int, int] | None = None) -> tuple[str, str]:
        created = await keys.create_key(
            self.runtime,
            self.project_id,
            keys.KeySpec(name="gw", scopes=scopes, rate_limit=rate_limit),
            actor="test",
        )
        return created.issued.key, created.issued.id


@asynccontextmanager
async def open_env(tmp: Path) -> AsyncIterator[Env]:
    """A runtime with an initialised admin (whose account and project the tests use)."""
    settings = Settings(data_dir=tmp / "data", header_prefix=PREFIX, key_prefix="aptr")
    runtime = await Runtime.start(settings, clock=FrozenClock())
    try:
        init = await init_admin(runtime, email="oa@example.com", password="gateway-password-1")
        yield Env(runtime, init.project.project.id, init.account.id)
    finally:
        await runtime.close()


def upstream_saw(response: httpx.Response) -> dict[str, list[str]]:
    assert response.status_code == 200, response.text
    out: dict[str, list[str]] = {}
    for name, value in response.json()["headers"]:
        out.setdefault(name.replace("_", "-"), []).append(value)
    return out


def problem(response: httpx.Response) -> tuple[int, str]:
    assert response.headers["content-type"] == "application/problem+json"
    return response.status_code, response.json()["code"]
