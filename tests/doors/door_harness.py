"""The four doors behind one interface, so every check is tested through each of them.

- ``middleware``: ``KeyguardMiddleware`` in front of a tiny Starlette app;
- ``sessions``: Keyguard's own protected route ``POST /v1/sessions``;
- ``verify``: ``POST /v1/keys/verify`` with the request described in JSON;
- ``gateway``: ``Gateway`` in front of a tiny upstream app.

A ``Req`` describes what reaches the door's socket: peer address, scheme, headers, the
TLS client certificate. For the verify API the calling service has already resolved
the transport, so requests that test our own resolution (forwarded headers) are
marked ``transport=True`` and skipped there.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from helpers import self_signed
from keyguard import errors
from keyguard.accounts.service import init_admin
from keyguard.app import create_asgi
from keyguard.clock import FrozenClock
from keyguard.crypto.keys import IssuedKey
from keyguard.crypto.request_signing import compute_signature
from keyguard.crypto.totp import totp_code
from keyguard.doors.middleware import KeyguardMiddleware
from keyguard.gateway import Gateway
from keyguard.keys import service as keys
from keyguard.restrictions import service as restrictions
from keyguard.runtime import Runtime
from keyguard.settings import Settings

PREFIX = "APTR"
PATH = "/v1/sessions"
BODY = b'{"delivery_mode": "poll"}'
UNTRUSTED = "203.0.113.7"
PROXY = "10.0.0.5"  # inside KEYGUARD_TRUSTED_PROXIES below
DOORS = ("middleware", "sessions", "verify", "gateway")


@dataclass
class Req:
    headers: dict[str, str]
    peer: str = UNTRUSTED
    scheme: str = "https"
    method: str = "POST"
    path: str = PATH
    body: bytes = BODY
    tls_cert_pem: str | None = None
    transport: bool = False  # tests our transport resolution: not for the verify API


@dataclass
class Outcome:
    status: int
    code: str | None
    headers: httpx.Headers
    text: str
    upstream_headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Cert:
    pem: str
    der: bytes


def make_cert(cn: str, not_before: datetime, not_after: datetime) -> Cert:
    cert, _ = self_signed(cn, not_before, not_after)
    return Cert(
        cert.public_bytes(serialization.Encoding.PEM).decode(),
        cert.public_bytes(serialization.Encoding.DER),
    )


def _with_transport(app: Any, scheme: str, tls_pem: str | None) -> Any:
    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope = {**scope, "scheme": scheme}
            if tls_pem is not None:
                scope["extensions"] = {"tls": {"client_cert_chain": [tls_pem]}}
        await app(scope, receive, send)

    return wrapped


async def _protected(request: Request) -> JSONResponse:
    principal = request.state.keyguard
    await request.body()
    return JSONResponse({"key_id": principal.key_id}, status_code=201)


async def _upstream(request: Request) -> JSONResponse:
    return JSONResponse(
        {"headers": dict(request.headers), "body": (await request.body()).decode("latin-1")},
        status_code=201,
    )


@dataclass
class Kit:
    runtime: Runtime
    clock: FrozenClock
    project_id: str
    actor: str
    root_key: str
    apps: dict[str, Any]

    # ---- keys -----------------------------------------------------------------------

    async def key(self, **spec: Any) -> IssuedKey:
        spec.setdefault("name", "door-test")
        created = await keys.create_key(
            self.runtime, self.project_id, keys.KeySpec(**spec), actor=self.actor
        )
        return created.issued

    async def enable_totp(self, key_id: str) -> str:
        enrolment = await restrictions.start_totp(self.runtime, key_id, actor=self.actor)
        code = totp_code(enrolment.secret, self.clock.now())
        await restrictions.confirm_totp(self.runtime, key_id, code, actor=self.actor)
        return enrolment.secret

    async def signing_secret(self, key_id: str) -> str:
        return await restrictions.set_signing_secret(self.runtime, key_id, actor=self.actor)

    async def add_cert(self, key_id: str, cert: Cert) -> None:
        await restrictions.add_certificate(self.runtime, key_id, cert.pem, actor=self.actor)

    def cert(
        self, cn: str = "client", *, valid_from: float = -3600, valid_for: float = 86400
    ) -> Cert:
        now = datetime.fromtimestamp(self.clock.now(), UTC)
        start = now + timedelta(seconds=valid_from)
        return make_cert(cn, start, start + timedelta(seconds=valid_for))

    def totp(self, secret: str, steps: int = 0) -> str:
        return totp_code(secret, self.clock.now() + 30 * steps)

    def signed(
        self,
        key_id: str,
        secret: str,
        *,
        ts_offset: int = 0,
        body: bytes = BODY,
        path: str = PATH,
        method: str = "POST",
    ) -> dict[str, str]:
        ts = str(int(self.clock.now()) + ts_offset)
        return {
            "X-API-Key": key_id,
            f"X-{PREFIX}-Timestamp": ts,
            f"X-{PREFIX}-Signature": compute_signature(secret, method, path, body, ts),
        }

    # ---- doors ----------------------------------------------------------------------

    async def call(self, door: str, req: Req) -> Outcome:
        if door == "verify":
            return await self._verify(req)
        app = _with_transport(self.apps[door], req.scheme, req.tls_cert_pem)
        transport = httpx.ASGITransport(app=app, client=(req.peer, 50000))
        async with httpx.AsyncClient(transport=transport, base_url="https://door") as client:
            # Non-ASCII values (full-width digits) travel as their raw UTF-8 bytes.
            headers = [(b"content-type", b"application/json")] + [
                (k.encode(), v.encode()) for k, v in req.headers.items()
            ]
            r = await client.request(req.method, req.path, headers=headers, content=req.body)
        code = r.json().get("code") if r.status_code >= 400 else None
        upstream = r.json().get("headers", {}) if door == "gateway" and r.status_code < 400 else {}
        return Outcome(r.status_code, code, r.headers, r.text, upstream)

    async def _verify(self, req: Req) -> Outcome:
        h = {k.lower(): v for k, v in req.headers.items()}
        p = PREFIX.lower()
        auth = h.get("authorization", "")
        key = auth[7:] if auth.lower().startswith("bearer ") else h.get("x-api-key", "")
        body: dict[str, Any] = {
            "key": key,
            "ip": req.peer,
            "method": req.method,
            "path": req.path,
            "body_base64": base64.b64encode(req.body).decode(),
            "https": req.scheme == "https",
        }
        for field_name, header in (
            ("origin", "origin"),
            ("referer", "referer"),
            ("totp", f"x-{p}-totp"),
            ("timestamp", f"x-{p}-timestamp"),
            ("signature", f"x-{p}-signature"),
        ):
            if header in h:
                body[field_name] = h[header]
        if req.tls_cert_pem is not None:
            body["client_cert_pem"] = req.tls_cert_pem
        transport = httpx.ASGITransport(app=self.apps["sessions"], client=("192.0.2.1", 1))
        async with httpx.AsyncClient(transport=transport, base_url="https://door") as client:
            r = await client.post(
                "/v1/keys/verify",
                content=json.dumps(body),
                headers={
                    "Authorization": f"Bearer {self.root_key}",
                    "Content-Type": "application/json",
                },
            )
        # Refusals too are a 200 whose body carries only ``valid`` and the ``code``: the
        # API sends no status. The door's status is the one the error class with that
        # code carries, i.e. what the other doors answer for the same refusal.
        assert r.status_code == 200, r.text
        result = r.json()
        if result["valid"]:
            assert result["code"] is None, r.text
            return Outcome(200, None, r.headers, r.text)
        return Outcome(_refusal_status(result["code"]), result["code"], r.headers, r.text)


def _refusal_status(code: str) -> int:
    """The HTTP status of the refusal ``code``, from the classes of ``keyguard.errors``.

    Only that module: the engine raises its classes, while feature modules reuse codes
    with another status (``keys.errors.KeyAlreadyRevoked`` is a 409 ``key_revoked``).
    """
    by_code: dict[str, list[type[errors.KeyguardError]]] = {}
    for obj in vars(errors).values():
        if (
            isinstance(obj, type)
            and issubclass(obj, errors.KeyguardError)
            and obj.__module__ == errors.__name__
        ):
            by_code.setdefault(obj.code, []).append(obj)
    classes = by_code.get(code)
    assert classes, f"the verify API refused with {code!r}, which no keyguard.errors class has"
    assert len(classes) == 1, f"{code!r} is the code of several errors: {classes}"
    return classes[0].status


@asynccontextmanager
async def open_kit(tmp: Path, **overrides: Any) -> AsyncIterator[Kit]:
    """``overrides`` are more Settings (e.g. ``client_cert_header``) for every door."""
    clock = FrozenClock(1_800_000_015.0)  # 15 s into a TOTP step
    settings = Settings(
        data_dir=tmp / "data",
        header_prefix=PREFIX,
        key_prefix="aptr",
        trusted_proxies=["10.0.0.0/8"],
        **overrides,
    )
    runtime = await Runtime.start(settings, clock=clock)
    try:
        init = await init_admin(runtime, email="doors@example.com", password="door-password-1")
        protected = Starlette(routes=[Route(PATH, _protected, methods=["POST", "GET"])])
        upstream = Starlette(routes=[Route(PATH, _upstream, methods=["POST", "GET"])])
        upstream_client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=upstream), base_url="http://upstream"
        )
        apps = {
            "middleware": KeyguardMiddleware(
                protected,
                engine=runtime.engine,
                header_prefix=PREFIX,
                trusted_proxies=runtime.trusted_proxies,
                client_cert_header=runtime.client_cert_header,
            ),
            "sessions": create_asgi(runtime),
            "gateway": Gateway(
                engine=runtime.engine,
                upstream="http://upstream",
                header_prefix=PREFIX,
                trusted_proxies=runtime.trusted_proxies,
                client_cert_header=runtime.client_cert_header,
                client=upstream_client,
            ),
        }
        yield Kit(
            runtime=runtime,
            clock=clock,
            project_id=init.project.project.id,
            actor=init.account.id,
            root_key=init.root_key.issued.key,
            apps=apps,
        )
        await upstream_client.aclose()
    finally:
        await runtime.close()
