"""Issue 13: OAuth access tokens, issued and verified, each beside its baseline.

Run alone (``python -m bench.oauth [--quick]``) or from ``bench/run.py`` (``make
bench``: ``oauth.oauth_cost`` is in ``INPROCESS_CHECKS``). A real ``Runtime`` on a
temporary SQLite data dir (``init_admin``, a confidential OAuth app registered through
the service, a project key made with ``create_key``), everything in-process: the ASGI
apps are called directly with a synthetic HTTPS scope (no socket, TLS or HTTP parsing),
as ``bench/inprocess.py`` does.

Issuance (client credentials): ``POST /oauth/token`` through the app the server runs
(``create_asgi``: form parsing, client authentication, one transaction, the ES256
signature), the grant's exchange alone (what the endpoint calls, without HTTP or client
authentication), client authentication alone and the ES256 signature alone, beside an
API key issued through ``keys.create_key`` (the machine credential a team would
otherwise hand a partner), interleaved repeat by repeat.

Verification: one Starlette route behind ``KeyguardMiddleware`` (the door a Python
team puts in front of its own app), called with ``Authorization: Bearer KEY`` and with
``Authorization: Bearer JWT`` in alternating blocks, beside the same route without the
middleware. The headline is token ÷ key per request (target ≤ 2.0, issue 13). The
token is a cache hit after its first use (a JWT cannot change: its signature is checked
once); the first sight of a token, signature and claims checked, is timed with a fresh
token per request, beside the bare ``joserfc`` decode and the ``cryptography`` ECDSA
P-256 check a resource server would otherwise run for it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/oauth.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from joserfc import jwt
from joserfc.jwk import KeySet
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bench.config import BenchConfig
from bench.inprocess import InProcessContext, request_scope
from bench.report import Row, render
from bench.timing import Timing
from keyguard.accounts.service import init_admin
from keyguard.app import create_asgi
from keyguard.doors.authenticate import authenticate_scope
from keyguard.doors.middleware import KeyguardMiddleware
from keyguard.keys.service import KeySpec, create_key
from keyguard.oauth import apps
from keyguard.oauth.apps import AppSpec
from keyguard.oauth.clients import PresentedClient, authenticate_client, load_client
from keyguard.oauth.grants import GRANTS
from keyguard.oauth.signing import ALG
from keyguard.runtime import Runtime
from keyguard.settings import Settings

SECTION_ISSUE = "OAuth token issuance (client_credentials, in-process ASGI, SQLite)"
SECTION_VERIFY = "OAuth access token vs API key through KeyguardMiddleware (in-process ASGI)"
RATIO_TARGET = 2.0  # issue 13: a token's verification within 2x of a key's
SCOPES = ("read", "write")
PATH = "/v1/things"
PREFIX = "Keyguard"

Call = Callable[[], Awaitable[object]]


# --- timing: A B A B ... blocks, so slow drifts of the machine hit every side ----------


async def interleaved(
    calls: dict[str, Call], *, iterations: int, repeats: int
) -> dict[str, Timing]:
    """``time_async`` for several calls at once: each repeat times a block of each in
    turn (after a warm-up of each), so a ratio is taken between blocks run back to back."""
    for fn in calls.values():
        for _ in range(min(iterations, 1000)):
            await fn()
    results: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, fn in calls.items():
            start = time.perf_counter_ns()
            for _ in range(iterations):
                await fn()
            results[name].append((time.perf_counter_ns() - start) / iterations)
    return {name: Timing(statistics.median(r), tuple(r)) for name, r in results.items()}


def ratio_of(a: Timing, b: Timing) -> tuple[float, list[float]]:
    """Median of the per-repeat ratios a/b (each from two blocks back to back)."""
    per = [x / y for x, y in zip(a.repeats_ns_per_op, b.repeats_ns_per_op, strict=True)]
    return statistics.median(per), per


def _fmt_ratios(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


# --- ASGI plumbing -----------------------------------------------------------------------


async def call_asgi(app: Any, scope: dict[str, Any], body: bytes = b"") -> tuple[int, bytes]:
    status = 0
    chunks: list[bytes] = []
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(dict(scope, state={}), receive, send)
    return status, b"".join(chunks)


async def _thing(request: Request) -> JSONResponse:
    return JSONResponse({"id": "thing_1", "name": "a thing"})


def user_app() -> Starlette:
    """What a team protects: one JSON route (the same answer for every caller)."""
    return Starlette(routes=[Route(PATH, _thing)])


# --- the setup -----------------------------------------------------------------------------


class OAuthBench:
    def __init__(self, runtime: Runtime, project_id: str, config: BenchConfig) -> None:
        self.runtime = runtime
        self.project_id = project_id
        self.config = config

    async def app(self) -> tuple[str, str]:
        created = await apps.create_app(
            self.runtime,
            self.project_id,
            AppSpec(
                name="Bench partner",
                public=False,
                redirect_uris=("https://app.example.com/callback",),
                allowed_domains=(),
                scopes=SCOPES,
            ),
            actor="bench",
        )
        assert created.client_secret is not None
        return created.app.client_id, created.client_secret

    # -- issuance --------------------------------------------------------------------------

    async def issuance(self) -> list[Row]:
        rt = self.runtime
        client_id, secret = await self.app()
        client = await load_client(rt, client_id)
        assert client is not None
        basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        body = b"grant_type=client_credentials&scope=read+write"
        scope = request_scope(
            "/oauth/token",
            {
                "Authorization": f"Basic {basic}",
                "Content-Type": "application/x-www-form-urlencoded",
                "Content-Length": str(len(body)),
            },
            method="POST",
        )
        asgi = create_asgi(rt)
        status, answer = await call_asgi(asgi, scope, body)
        if status != 200 or b'"access_token"' not in answer:
            raise RuntimeError(f"POST /oauth/token answered {status}: {answer[:200]!r}")

        async def endpoint() -> object:
            status, _ = await call_asgi(asgi, scope, body)
            if status != 200:
                raise RuntimeError(f"POST /oauth/token answered {status}")
            return status

        grant = GRANTS["client_credentials"]
        form = {"scope": "read write"}

        async def exchange() -> object:
            return await grant.exchange(rt, client, form)

        presented = PresentedClient(client_id, secret, "client_secret_basic")

        async def client_auth() -> object:
            return await authenticate_client(rt, presented, client_ip="127.0.0.1")

        async def api_key() -> object:
            spec = KeySpec(name="bench-issued", scopes=SCOPES)
            return await create_key(rt, self.project_id, spec, actor="bench")

        tokens = rt.oauth.tokens
        scopes = frozenset(SCOPES)

        async def sign_only() -> object:
            return await tokens.issue(
                now=rt.clock.now(),
                client_id=client_id,
                project_id=self.project_id,
                scopes=scopes,
                subject=None,
            )

        # Each issuance is a SQLite transaction (ms, not us): 100 per block (50 quick).
        iterations = max(self.config.iterations // 200, 50)
        t = await interleaved(
            {
                "endpoint": endpoint,
                "exchange": exchange,
                "client": client_auth,
                "sign": sign_only,
                "key": api_key,
            },
            iterations=iterations,
            repeats=self.config.repeats,
        )
        http_share, http_ratios = ratio_of(t["endpoint"], t["exchange"])
        key_ratio, key_ratios = ratio_of(t["key"], t["endpoint"])  # time ratio = rate ratio
        s = SECTION_ISSUE
        return [
            Row(
                s,
                "POST /oauth/token (client_credentials)",
                t["endpoint"].ops_per_s,
                "tokens/s",
                note=f"{t['endpoint'].us_per_op:,.0f} us per token; Basic auth, one at a time",
            ),
            Row(
                s,
                "  grant exchange alone (no HTTP, no client auth)",
                t["exchange"].ops_per_s,
                "tokens/s",
                note=f"{t['exchange'].us_per_op:,.0f} us: one transaction, grant + token rows",
            ),
            Row(
                s,
                "  client authentication alone (Basic, SQLite read)",
                t["client"].us_per_op,
                "us/op",
                note="authenticate_client: failure buckets, load_client, HMAC",
            ),
            Row(
                s,
                "  ES256 JWT signature alone (AccessTokens.issue)",
                t["sign"].ops_per_s,
                "tokens/s",
                note=f"{t['sign'].us_per_op:.1f} us",
            ),
            Row(
                s,
                "endpoint / grant exchange",
                http_share,
                "x",
                note=f"per repeat {_fmt_ratios(http_ratios)}; {iterations} tokens per block",
            ),
            Row(
                s,
                "endpoint / ES256 signature",
                t["endpoint"].ns_per_op / t["sign"].ns_per_op,
                "x",
            ),
            Row(
                s,
                "baseline: an API key issued (keys.create_key)",
                t["key"].ops_per_s,
                "keys/s",
                note=f"{t['key'].us_per_op:,.0f} us: the other machine credential, audited",
            ),
            Row(
                s,
                "tokens/s at the endpoint / API keys issued/s",
                key_ratio,
                "ratio",
                note=f"per repeat {_fmt_ratios(key_ratios)}",
            ),
        ]

    # -- verification ----------------------------------------------------------------------

    async def verification(self) -> list[Row]:
        rt = self.runtime
        engine = rt.engine
        issued = (
            await create_key(rt, self.project_id, KeySpec(name="bench-key"), actor="bench")
        ).issued
        await rt.cache.get(issued.id)
        client_id, _ = await self.app()
        client = await load_client(rt, client_id)
        assert client is not None
        token = (await GRANTS["client_credentials"].exchange(rt, client, {})).access_token

        inner = user_app()
        protected = KeyguardMiddleware(
            inner,
            engine=engine,
            header_prefix=PREFIX,
            trusted_proxies=rt.trusted_proxies,
            client_cert_header=rt.client_cert_header,
        )
        key_scope = request_scope(PATH, {"Authorization": f"Bearer {issued.key}"})
        token_scope = request_scope(PATH, {"Authorization": f"Bearer {token}"})
        bare_scope = request_scope(PATH, {})
        for app, scope, who in (
            (protected, key_scope, "key"),
            (protected, token_scope, "token"),
            (inner, bare_scope, "no credential, no middleware"),
        ):
            status, answer = await call_asgi(app, scope)
            if status != 200:
                raise RuntimeError(f"GET {PATH} with {who} answered {status}: {answer[:200]!r}")

        async def no_body() -> bytes:
            return b""

        def door(scope: dict[str, Any]) -> Call:
            async def call() -> object:
                return await authenticate_scope(
                    engine, scope, no_body, header_prefix=PREFIX, door="middleware"
                )

            return call

        def request(app: Any, scope: dict[str, Any]) -> Call:
            async def call() -> object:
                return await call_asgi(app, scope)

            return call

        cfg = self.config
        t = await interleaved(
            {
                "key": request(protected, key_scope),
                "token": request(protected, token_scope),
                "bare": request(inner, bare_scope),
            },
            iterations=max(cfg.iterations // 4, 1000),
            repeats=cfg.repeats,
        )
        d = await interleaved(
            {"key": door(key_scope), "token": door(token_scope)},
            iterations=cfg.iterations,
            repeats=cfg.repeats,
        )
        first = await self._first_sight(client_id, protected)

        ratio, per = ratio_of(t["token"], t["key"])
        door_ratio, door_per = ratio_of(d["token"], d["key"])
        mw_key = t["key"].us_per_op - t["bare"].us_per_op
        mw_token = t["token"].us_per_op - t["bare"].us_per_op
        s = SECTION_VERIFY
        rows = [
            Row(s, f"GET {PATH}, API key (Bearer KEY)", t["key"].us_per_op, "us/req"),
            Row(
                s,
                f"GET {PATH}, access token (Bearer JWT)",
                t["token"].us_per_op,
                "us/req",
                note="cache hit: signature checked on first sight only",
            ),
            Row(
                s,
                "access token / API key, per request",
                ratio,
                "ratio",
                target=f"<= {RATIO_TARGET:g}",
                meets=ratio <= RATIO_TARGET,
                note=f"median of per-repeat ratios {_fmt_ratios(per)}",
            ),
            Row(
                s,
                "  same route without the middleware",
                t["bare"].us_per_op,
                "us/req",
                note="Starlette alone: the floor both share",
            ),
            Row(s, "  middleware's share, API key", mw_key, "us/req"),
            Row(s, "  middleware's share, access token", mw_token, "us/req"),
            Row(
                s,
                "  token / key, the middleware's share",
                mw_token / mw_key if mw_key > 0 else float("nan"),
                "ratio",
                note="request minus the bare route",
            ),
            Row(s, "door: authenticate_scope, API key", d["key"].us_per_op, "us/op"),
            Row(s, "door: authenticate_scope, access token", d["token"].us_per_op, "us/op"),
            Row(
                s,
                "door: token / key",
                door_ratio,
                "ratio",
                note=f"median of per-repeat ratios {_fmt_ratios(door_per)}",
            ),
        ]
        cached = t["token"].us_per_op
        rows += [
            Row(
                s,
                f"GET {PATH}, a new access token each request",
                first["request"].us_per_op,
                "us/req",
                note="first sight: signature + claims checked",
            ),
            Row(
                s,
                "  first-sight cost over a cached token",
                first["request"].us_per_op - cached,
                "us extra",
            ),
            Row(
                s,
                "  first sight / API key, per request",
                first["request"].ns_per_op / t["key"].ns_per_op,
                "ratio",
            ),
            Row(
                s,
                "  AccessTokens.verify alone (new token)",
                first["verify"].us_per_op,
                "us/op",
                note="kid, ES256 signature, typ/alg, iss/aud/exp/nbf, claims",
            ),
            Row(
                s,
                "baseline: joserfc jwt.decode ES256 alone",
                first["decode"].us_per_op,
                "us/op",
                note="what a resource server would run; no claim checks",
            ),
            Row(
                s,
                "baseline: cryptography ECDSA P-256 verify",
                first["ecdsa"].us_per_op,
                "us/op",
                note="the signature check alone: the irreducible part",
            ),
            Row(
                s,
                "AccessTokens.verify / joserfc jwt.decode",
                first["verify"].ns_per_op / first["decode"].ns_per_op,
                "x",
            ),
            Row(
                s,
                "AccessTokens.verify / ECDSA verify",
                first["verify"].ns_per_op / first["ecdsa"].ns_per_op,
                "x",
            ),
        ]
        return rows

    async def _first_sight(self, client_id: str, protected: Any) -> dict[str, Timing]:
        """A fresh token per request (signed beforehand, outside the timed loops)."""
        rt = self.runtime
        tokens = rt.oauth.tokens
        cfg = self.config
        iterations = max(cfg.iterations // 20, 250)
        per_call = min(iterations, 1000) + iterations * cfg.repeats

        async def fresh(n: int) -> Iterator[str]:
            made = []
            for _ in range(n):
                issued = await tokens.issue(
                    now=rt.clock.now(),
                    client_id=client_id,
                    project_id=self.project_id,
                    scopes=frozenset(SCOPES),
                    subject=None,
                )
                made.append(issued.token)
            return iter(made)

        request_tokens = await fresh(per_call)
        scopes = iter(
            [request_scope(PATH, {"Authorization": f"Bearer {tok}"}) for tok in request_tokens]
        )
        verify_tokens = await fresh(per_call)
        decode_tokens = await fresh(per_call)
        ecdsa_tokens = await fresh(per_call)
        key_set: KeySet = await rt.oauth.keys.verification_keys(None)
        public = (await rt.oauth.keys.signing_key()).private.public_key
        assert isinstance(public, ec.EllipticCurvePublicKey)
        signed = []
        for tok in ecdsa_tokens:
            head, payload, sig = tok.split(".")
            raw = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
            der = encode_dss_signature(int.from_bytes(raw[:32]), int.from_bytes(raw[32:]))
            signed.append((f"{head}.{payload}".encode(), der))
        signed_iter = iter(signed)
        ecdsa = ec.ECDSA(hashes.SHA256())

        async def request() -> object:
            status, _ = await call_asgi(protected, next(scopes))
            if status != 200:
                raise RuntimeError(f"a fresh token answered {status}")
            return status

        async def verify() -> object:
            return await tokens.verify(next(verify_tokens), now=rt.clock.now())

        async def decode() -> object:
            return jwt.decode(next(decode_tokens), key_set, algorithms=[ALG])

        async def ecdsa_only() -> object:
            message, der = next(signed_iter)
            public.verify(der, message, ecdsa)
            return None

        return await interleaved(
            {"request": request, "verify": verify, "decode": decode, "ecdsa": ecdsa_only},
            iterations=iterations,
            repeats=cfg.repeats,
        )


async def oauth_cost(
    ctx: InProcessContext | None = None, *, config: BenchConfig | None = None
) -> list[Row]:
    """A ``bench/run.py`` in-process check (it brings its own Runtime)."""
    config = config or (ctx.config if ctx is not None else BenchConfig.create(quick=True))
    with tempfile.TemporaryDirectory(prefix="keyguard-bench-oauth-") as tmp:
        runtime = await Runtime.start(Settings(data_dir=Path(tmp)))
        try:
            init = await init_admin(runtime, email="bench@example.com", password="bench-pass-1")
            bench = OAuthBench(runtime, init.project.project.id, config)
            return await bench.issuance() + await bench.verification()
        finally:
            await runtime.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="OAuth token issuance and verification.")
    parser.add_argument("--quick", action="store_true", help="short runs (smoke test)")
    args = parser.parse_args(argv)
    config = BenchConfig.create(quick=args.quick)
    print(
        f"Keyguard OAuth bench: {config.iterations:,} iterations x {config.repeats} repeats "
        "(fewer for issuance and first sight), median",
        flush=True,
    )
    started = time.monotonic()
    print(render(asyncio.run(oauth_cost(config=config))))
    print(f"\n(took {time.monotonic() - started:.0f} s; targets are informational, not asserted)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
