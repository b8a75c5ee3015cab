"""In-process costs: the policy engine and the ASGI app, without sockets or TLS.

``open_context`` builds a real ``Runtime`` on a temporary SQLite data dir, exactly as
``keyguard init`` + ``keyguard serve`` would, and gives checks a helper to create keys with
any ``KeySpec`` (restrictions included), so a new check is one small function::

    async def ip_allowlist_cost(ctx: InProcessContext) -> list[Row]:
        issued = await ctx.create_key(KeySpec(name="ip", ip_allowlist=tuple(ranges)))
        ...
        return [Row("verification", "verify, 10,000 CIDRs", t.us_per_op, "us/op")]

and a line in ``bench/run.py``'s ``INPROCESS_CHECKS``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.config import BenchConfig
from bench.report import Row
from bench.timing import Timing, time_async, time_sync
from keyguard.accounts.service import init_admin
from keyguard.app import create_asgi
from keyguard.crypto.keys import IssuedKey, parse_key
from keyguard.doors.authenticate import authenticate_scope
from keyguard.doors.scope import facts_from_scope, header_map
from keyguard.engine.credentials import extract_credentials
from keyguard.engine.facts import RequestFacts
from keyguard.keys.service import KeySpec, create_key
from keyguard.runtime import Runtime
from keyguard.settings import Settings
from keyguard.uploads import sessions

VERIFY_TARGET_US = 5.0  # issue 11 (was 10)
USAGE_TARGET_US = 0.5  # issue 9: the extra cost of usage counting per verified request
ROUTE_RATIO_TARGET = 0.90
SECTION_VERIFY = "in-process verification (cache hit, PolicyEngine.verify)"
SECTION_ROUTES = "in-process ASGI app (no socket, no TLS, no HTTP parsing)"
DOOR_ROW = "door: authenticate_scope (all of it)"


@dataclass
class InProcessContext:
    config: BenchConfig
    runtime: Runtime
    project_id: str
    account_id: str
    data_dir: Path

    async def create_key(self, spec: KeySpec) -> IssuedKey:
        created = await create_key(self.runtime, self.project_id, spec, actor=self.account_id)
        return created.issued

    async def warm(self, issued: IssuedKey) -> None:
        """Load the key into the cache: every measurement here is of a cache hit."""
        record = await self.runtime.cache.get(issued.id)
        if record is None:
            raise RuntimeError(f"key {issued.id} did not load")

    def time_sync(self, fn: Callable[[], object]) -> Timing:
        return time_sync(fn, iterations=self.config.iterations, repeats=self.config.repeats)

    async def time_async(self, fn: Callable[[], Awaitable[object]]) -> Timing:
        return await time_async(fn, iterations=self.config.iterations, repeats=self.config.repeats)


@asynccontextmanager
async def open_context(config: BenchConfig) -> AsyncIterator[InProcessContext]:
    with tempfile.TemporaryDirectory(prefix="keyguard-bench-") as tmp:
        data_dir = Path(tmp)
        runtime = await Runtime.start(Settings(data_dir=data_dir))
        try:
            init = await init_admin(runtime, email="bench@example.com", password="bench-password-1")
            yield InProcessContext(
                config=config,
                runtime=runtime,
                project_id=init.project.project.id,
                account_id=init.account.id,
                data_dir=data_dir,
            )
        finally:
            await runtime.close()


def request_scope(
    path: str, headers: dict[str, str], *, method: str = "GET", client_ip: str = "127.0.0.1"
) -> dict[str, Any]:
    """The ASGI scope uvicorn would build for an HTTPS request on loopback."""
    raw_headers = [(b"host", b"127.0.0.1:8443")]
    raw_headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": raw_headers,
        "client": (client_ip, 50000),
        "server": ("127.0.0.1", 8443),
        "state": {},
    }


async def verification_cost(ctx: InProcessContext) -> list[Row]:
    """Check 1: µs per verification of a cache-hit key, and what it is made of."""
    issued = await ctx.create_key(KeySpec(name="bench-plain"))
    await ctx.warm(issued)
    engine = ctx.runtime.engine
    key = issued.key
    headers = {"authorization": f"Bearer {key}"}
    credentials = extract_credentials(headers)
    assert credentials is not None
    facts = RequestFacts(client_ip="127.0.0.1", method="GET", path_with_query="/v1/x")
    pepper = b"p" * 32
    secret = issued.secret.encode()
    scope = request_scope("/v1/sessions/x", {"Authorization": f"Bearer {key}"})

    async def no_body() -> bytes:
        return b""

    async def headline() -> object:
        creds = extract_credentials(headers)
        assert creds is not None
        return await engine.verify(creds, facts)

    async def verify_only() -> object:
        return await engine.verify(credentials, facts)

    async def door() -> object:
        return await authenticate_scope(engine, scope, no_body, header_prefix="Keyguard")

    def scope_parsing() -> object:
        h = header_map(scope)
        return facts_from_scope(scope, h, "Keyguard")

    t_hmac = ctx.time_sync(lambda: hmac.digest(pepper, secret, hashlib.sha256))
    t_parse = ctx.time_sync(lambda: parse_key(key))
    t_extract = ctx.time_sync(lambda: extract_credentials(headers))
    t_verify = await ctx.time_async(verify_only)
    t_total = await ctx.time_async(headline)
    t_scope = ctx.time_sync(scope_parsing)
    t_door = await ctx.time_async(door)
    # Usage counting (CONTRACT §10): the hook the engine calls per verified request, timed
    # on its own, and verify without it, in the same run.
    counter = engine.on_use
    assert counter is not None
    record_id, record_project = credentials.key_id, ctx.project_id
    t_count = ctx.time_sync(lambda: counter(record_id, record_project, None, facts.client_ip))
    # Behind trusted proxies the doors hand over a parsed address object instead of text.
    parsed = ipaddress.ip_address("127.0.0.1")
    t_count_parsed = ctx.time_sync(lambda: counter(record_id, record_project, None, parsed))
    engine.on_use = None
    try:
        t_verify_uncounted = await ctx.time_async(verify_only)
    finally:
        engine.on_use = counter

    s = SECTION_VERIFY
    return [
        Row(
            s,
            "extract_credentials + verify",
            t_total.us_per_op,
            "us/op",
            note=f"{t_total.ops_per_s:,.0f} verifications/s on one core",
            target=f"<= {VERIFY_TARGET_US:g} us",
            meets=t_total.us_per_op <= VERIFY_TARGET_US,
        ),
        Row(s, "  parse_key (regex + CRC32 checksum)", t_parse.us_per_op, "us/op"),
        Row(s, "  extract_credentials (incl. parse_key)", t_extract.us_per_op, "us/op"),
        Row(s, "  PolicyEngine.verify alone", t_verify.us_per_op, "us/op"),
        Row(
            s,
            "  usage counting per verified request",
            t_count.us_per_op,
            "us/op",
            target=f"<= {USAGE_TARGET_US:g} us",
            meets=t_count.us_per_op <= USAGE_TARGET_US,
        ),
        Row(
            s,
            "  usage counting, parsed client address",
            t_count_parsed.us_per_op,
            "us/op",
            note="behind trusted proxies",
        ),
        Row(
            s,
            "  PolicyEngine.verify, counting off",
            t_verify_uncounted.us_per_op,
            "us/op",
            note="same run, for comparison",
        ),
        Row(s, "baseline: hmac.digest sha256", t_hmac.us_per_op, "us/op"),
        Row(s, "verification / hmac.digest", t_total.ns_per_op / t_hmac.ns_per_op, "x"),
        Row(
            s,
            "door: header_map + facts (no creds)",
            t_scope.us_per_op,
            "us/op",
            note="ASGI scope -> RequestFacts",
        ),
        Row(
            s,
            DOOR_ROW,
            t_door.us_per_op,
            "us/op",
            note="what a protected route pays for auth",
        ),
    ]


async def _call_asgi(app: Any, scope: dict[str, Any]) -> int:
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(dict(scope, state={}), receive, send)
    return status


async def route_cost(ctx: InProcessContext) -> list[Row]:
    """The server-side cost of each route in check 2, minus the network: a decomposition."""
    issued = await ctx.create_key(KeySpec(name="bench-routes"))
    await ctx.warm(issued)
    row = await sessions.create_session(
        ctx.runtime,
        project_id=ctx.project_id,
        key_id=issued.id,
        delivery_mode="poll",
        webhook_url=None,
        password=None,
        expires_in=3600,
    )
    app = create_asgi(ctx.runtime)  # what the server runs (minus HSTS and TLS)
    protected = request_scope(f"/v1/sessions/{row.id}", {"Authorization": f"Bearer {issued.key}"})
    unprotected = request_scope("/v1/", {})
    for scope in (protected, unprotected):
        status = await _call_asgi(app, scope)
        if status != 200:
            raise RuntimeError(f"{scope['path']} answered {status}, expected 200")

    # Fewer iterations: these go through SQLite (a thread hop per query).
    iterations = max(ctx.config.iterations // 10, 500)

    async def timed(fn: Callable[[], Awaitable[object]]) -> Timing:
        return await time_async(fn, iterations=iterations, repeats=ctx.config.repeats)

    t_unprotected = await timed(lambda: _call_asgi(app, unprotected))
    t_protected = await timed(lambda: _call_asgi(app, protected))
    t_load = await timed(
        lambda: sessions.get_session(ctx.runtime, row.id, project_id=ctx.project_id)
    )

    async def door() -> object:
        async def no_body() -> bytes:
            return b""

        return await authenticate_scope(
            ctx.runtime.engine, protected, no_body, header_prefix="Keyguard"
        )

    t_door = await timed(door)
    extra = t_protected.us_per_op - t_unprotected.us_per_op
    s = SECTION_ROUTES
    ratio = t_unprotected.ns_per_op / t_protected.ns_per_op
    return [
        Row(s, "GET /v1/ (unprotected)", t_unprotected.us_per_op, "us/req"),
        Row(s, "GET /v1/sessions/ID (protected)", t_protected.us_per_op, "us/req"),
        Row(
            s,
            "protected/unprotected throughput",
            ratio,
            "ratio",
            note="one request at a time, wall time incl. thread-hop waits",
            target=f">= {ROUTE_RATIO_TARGET:.2f}",
            meets=ratio >= ROUTE_RATIO_TARGET,
        ),
        Row(s, "extra cost of the protected route", extra, "us/req"),
        Row(
            s,
            "  of which authenticate_scope",
            t_door.us_per_op,
            "us/req",
            note=f"{100 * t_door.us_per_op / extra:.0f}% of the extra" if extra > 0 else "",
        ),
        Row(
            s,
            "  of which sessions.get_session (SQLite)",
            t_load.us_per_op,
            "us/req",
            note=f"{100 * t_load.us_per_op / extra:.0f}% of the extra" if extra > 0 else "",
        ),
    ]


async def run_all(
    config: BenchConfig, checks: list[Callable[[InProcessContext], Awaitable[list[Row]]]]
) -> list[Row]:
    rows: list[Row] = []
    async with open_context(config) as ctx:
        for check in checks:
            rows += await check(ctx)
    return rows


__all__ = [
    "InProcessContext",
    "open_context",
    "request_scope",
    "route_cost",
    "run_all",
    "verification_cost",
]
