"""The gateway as a reverse proxy: what it forwards, strips, adds and streams."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from keyguard.accounts.service import init_admin
from keyguard.clock import FrozenClock
from keyguard.gateway import Gateway, upstream_base
from keyguard.keys import service as keys
from keyguard.runtime import Runtime
from keyguard.settings import Settings

PREFIX = "APTR"


async def echo(request: Request) -> Response:
    body = await request.body()
    return JSONResponse(
        {
            "method": request.method,
            "path": request.url.path,
            "query": request.url.query,
            "headers": [[k, v] for k, v in request.headers.items()],
            "body_len": len(body),
            "body_head": body[:32].decode("latin-1"),
        },
        headers={"Connection": "close, X-Upstream-Hop", "X-Upstream-Hop": "1", "X-Kept": "yes"},
    )


async def chunks(request: Request) -> Response:
    async def parts() -> AsyncIterator[bytes]:
        for i in range(50):
            yield f"chunk-{i};".encode()

    return StreamingResponse(parts(), media_type="text/plain")


async def fail(request: Request) -> Response:
    return JSONResponse({"upstream": "error"}, status_code=503)


UPSTREAM = Starlette(
    routes=[
        Route("/base/echo", echo, methods=["GET", "POST", "PUT"]),
        Route("/base/chunks", chunks),
        Route("/base/fail", fail),
    ]
)


class Env:
    def __init__(self, runtime: Runtime, key: str, key_id: str, project_id: str) -> None:
        self.runtime, self.key, self.key_id, self.project_id = runtime, key, key_id, project_id

    def gateway(
        self, client: httpx.AsyncClient | None = None, upstream: str = "http://up/base/"
    ) -> Gateway:
        return Gateway(
            engine=self.runtime.engine,
            upstream=upstream,
            header_prefix=PREFIX,
            trusted_proxies=self.runtime.trusted_proxies,
            client=client
            or httpx.AsyncClient(transport=httpx.ASGITransport(app=UPSTREAM), base_url="http://up"),
        )

    async def send(
        self,
        method: str,
        path: str,
        *,
        peer: str = "203.0.113.7",
        gateway: Gateway | None = None,
        **kw,
    ) -> httpx.Response:
        app = gateway or self.gateway()
        transport = httpx.ASGITransport(app=app, client=(peer, 4000))
        async with httpx.AsyncClient(transport=transport, base_url="https://gw") as client:
            return await client.request(method, path, **kw)


@pytest.fixture(scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    tmp: Path = tmp_path_factory.mktemp("gateway")
    settings = Settings(
        data_dir=tmp / "data",
        header_prefix=PREFIX,
        key_prefix="aptr",
        trusted_proxies=["10.0.0.0/8"],
    )
    runtime = await Runtime.start(settings, clock=FrozenClock())
    init = await init_admin(runtime, email="gw@example.com", password="gateway-password-1")
    project_id = init.project.project.id
    created = await keys.create_key(
        runtime,
        project_id,
        keys.KeySpec(name="gw", scopes=("photos:read", "sessions:write"), rate_limit=(1000, 60)),
        actor="test",
    )
    yield Env(runtime, created.issued.key, created.issued.id, project_id)
    await runtime.close()


def upstream_headers(response: httpx.Response) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in response.json()["headers"]:
        out.setdefault(name, []).append(value)
    return out


async def test_identity_is_added_and_forged_identity_and_credentials_are_stripped(env: Env) -> None:
    r = await env.send(
        "GET",
        "/echo?a=1&b=%2F",
        headers={
            "Authorization": f"Bearer {env.key}",
            "X-APTR-Key-Id": "forged",
            "x-aptr-project-id": "forged",
            "X-APTR-Scopes": "admin",
            "X-Forwarded-For": "198.51.100.1",
            "X-Forwarded-Host": "evil",
            "Client-Cert": ":Zm9yZ2Vk:",
            "X-SSL-Client-Verify": "SUCCESS",
        },
    )
    assert r.status_code == 200, r.text
    up = upstream_headers(r)
    assert "x-ssl-client-verify" not in up  # a forged verdict on a certificate
    assert up["x-aptr-key-id"] == [env.key_id]
    assert up["x-aptr-project-id"] == [env.project_id]
    assert up["x-aptr-scopes"] == ["photos:read sessions:write"]
    assert "authorization" not in up  # the key stays at the gateway
    assert "client-cert" not in up
    assert up["x-forwarded-for"] == ["203.0.113.7"]  # the client's own copy is dropped
    assert up["x-forwarded-proto"] == ["https"]
    assert up["x-forwarded-host"] == ["gw"]
    assert env.key not in r.text
    assert (r.json()["path"], r.json()["query"]) == ("/base/echo", "a=1&b=%2F")
    assert r.headers["ratelimit-limit"] == "1000"


async def test_hop_by_hop_headers_go_neither_way(env: Env) -> None:
    r = await env.send(
        "GET",
        "/echo",
        headers={
            "Authorization": f"Bearer {env.key}",
            "Connection": "keep-alive, X-Private-Hop",
            "X-Private-Hop": "secret-for-next-hop-only",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "Upgrade": "websocket",
            "X-Ordinary": "kept",
        },
    )
    up = upstream_headers(r)
    for name in ("x-private-hop", "keep-alive", "te", "upgrade", "proxy-authorization"):
        assert name not in up, name
    assert up["x-ordinary"] == ["kept"]
    assert "x-upstream-hop" not in r.headers
    assert r.headers["x-kept"] == "yes"


async def test_other_authorization_schemes_belong_to_the_upstream(env: Env) -> None:
    r = await env.send(
        "GET", "/echo", headers={"X-API-Key": env.key, "Authorization": "Basic dXNlcjpwYXNz"}
    )
    up = upstream_headers(r)
    assert up["authorization"] == ["Basic dXNlcjpwYXNz"]
    assert "x-api-key" not in up


async def test_forwarded_for_chain_is_kept_from_a_trusted_proxy(env: Env) -> None:
    r = await env.send(
        "GET",
        "/echo",
        peer="10.0.0.5",
        headers={"Authorization": f"Bearer {env.key}", "X-Forwarded-For": "198.51.100.1"},
    )
    assert upstream_headers(r)["x-forwarded-for"] == ["198.51.100.1, 10.0.0.5"]


async def test_large_bodies_stream_through_both_ways(env: Env) -> None:
    body = b"x" * (3 * 1024 * 1024)

    async def produce() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 65536):
            yield body[i : i + 65536]

    r = await env.send(
        "PUT", "/echo", headers={"Authorization": f"Bearer {env.key}"}, content=produce()
    )
    assert r.json()["body_len"] == len(body)
    r = await env.send("GET", "/chunks", headers={"Authorization": f"Bearer {env.key}"})
    assert r.text == "".join(f"chunk-{i};" for i in range(50))


async def test_refused_requests_never_reach_the_upstream(env: Env) -> None:
    calls = 0

    def count(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(200)

    gateway = env.gateway(client=httpx.AsyncClient(transport=httpx.MockTransport(count)))
    r = await env.send("GET", "/echo", gateway=gateway)
    assert (r.status_code, r.json()["code"]) == (401, "credentials_missing")
    r = await env.send("GET", "/echo", gateway=gateway, headers={"Authorization": "Bearer nope"})
    assert (r.status_code, r.json()["code"]) == (401, "invalid_key")
    assert calls == 0


async def test_upstream_errors_pass_through_and_an_unreachable_upstream_is_502(env: Env) -> None:
    r = await env.send("GET", "/fail", headers={"Authorization": f"Bearer {env.key}"})
    assert (r.status_code, r.json()) == (503, {"upstream": "error"})

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    gateway = env.gateway(client=httpx.AsyncClient(transport=httpx.MockTransport(refuse)))
    r = await env.send(
        "GET", "/echo", gateway=gateway, headers={"Authorization": f"Bearer {env.key}"}
    )
    assert r.status_code == 502
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "bad_gateway"
    assert "connection refused" not in r.text


@pytest.mark.parametrize(
    "url", ["ftp://example.com", "http://", "http://x/?q=1", "not a url", "http://x/#f"]
)
def test_bad_upstream_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="upstream"):
        upstream_base(url)


def test_upstream_base_drops_a_trailing_slash() -> None:
    assert upstream_base("http://127.0.0.1:9000/") == "http://127.0.0.1:9000"
    assert upstream_base("https://api.internal/base/") == "https://api.internal/base"
    assert json.dumps(upstream_base("http://h"))


async def test_identity_and_client_address_headers_are_stripped_in_every_spelling(
    env: Env,
) -> None:
    """Issue 10, defect 10: names were stripped exactly, so ``X-APTR-Key_Id`` (which some
    upstream servers fold into ``X-APTR-Key-Id``) and X-Real-IP and friends reached the
    upstream as the client wrote them."""
    r = await env.send(
        "GET",
        "/echo",
        headers={
            "Authorization": f"Bearer {env.key}",
            "X-APTR-Key_Id": "forged",
            "x_aptr_project_id": "forged",
            "X-APTR-Scopes_": "admin",
            "X-APTR-Anything-Else": "forged",
            "X_API_Key": "forged",
            "X-Real-IP": "198.51.100.66",
            "True-Client-IP": "198.51.100.66",
            "X-Original-URL": "/admin",
            "X_Forwarded_For": "198.51.100.66",
            "X-Custom": "kept",
        },
    )
    assert r.status_code == 200, r.text
    up = upstream_headers(r)
    seen = {name.replace("_", "-") for name in up}
    assert up["x-aptr-key-id"] == [env.key_id]
    assert up["x-aptr-project-id"] == [env.project_id]
    assert "x-aptr-anything-else" not in seen
    assert "x-api-key" not in seen
    for name in ("x-real-ip", "true-client-ip", "x-original-url"):
        assert name not in seen
    assert up["x-forwarded-for"] == ["203.0.113.7"]
    assert sum(name.replace("_", "-") == "x-forwarded-for" for name in up) == 1
    assert up["x-custom"] == ["kept"]
    assert "forged" not in r.text
    assert "198.51.100.66" not in r.text
