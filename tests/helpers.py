"""Small helpers shared by the HTTP tests."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import event, func, select

from keyguard.audit.models import AuditEvent
from keyguard.crypto.keys import ALPHABET, IssuedKey, new_secret_for
from keyguard.keys.models import ApiKey
from keyguard.runtime import Runtime
from keyguard.uploads.models import UploadSession

POLL_SESSION = {"delivery_mode": "poll"}


def issue_legacy_key(prefix: str, environment: str) -> IssuedKey:
    """A key as Keyguard issued them before ids carried a tag: 16 random characters."""
    key_id = f"{prefix}_{environment}_" + "".join(secrets.choice(ALPHABET) for _ in range(16))
    return IssuedKey(key_id, new_secret_for(key_id))


async def create_key(
    client: httpx.AsyncClient, headers: dict[str, str], project_id: str, **body: Any
) -> dict[str, Any]:
    body.setdefault("name", "server")
    body.setdefault("environment", "live")
    r = await client.post(f"/v1/projects/{project_id}/keys", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def counts(runtime: Runtime) -> tuple[int, ...]:
    """Rows of keys, audit events and sessions: a refused request changes none of them."""
    async with runtime.sessions() as db:
        return tuple(
            [
                (await db.execute(select(func.count()).select_from(model))).scalar_one()
                for model in (ApiKey, AuditEvent, UploadSession)
            ]
        )


@asynccontextmanager
async def counted_queries(runtime: Runtime) -> AsyncIterator[list[str]]:
    """Every SQL statement run on the runtime's database inside the block (by any of its
    engines: key-cache misses on SQLite read through their own).

    The runtime's background loops (cache-bus polling, usage and failed-check flushes) are
    stopped first and stay stopped, so what is counted is what the block itself did.
    """
    await runtime.state.cache_bus.close()
    for loop in (runtime.usage, runtime.refusals):
        if loop is not None:
            await loop.close()
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    for engine in runtime.engines:
        event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        for engine in runtime.engines:
            event.remove(engine, "before_cursor_execute", count)


def self_signed(
    cn: str, not_before: datetime, not_after: datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed P-256 client certificate for ``cn``, valid between the two instants."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def redis_url() -> str:
    """KEYGUARD_TEST_REDIS_URL (scripts/test-services starts it): required in CI, else a
    test that needs Redis is skipped."""
    url = os.environ.get("KEYGUARD_TEST_REDIS_URL")
    if url:
        return url
    if os.environ.get("CI") == "true":
        pytest.fail("KEYGUARD_TEST_REDIS_URL is required in CI (scripts/test-services starts it)")
    pytest.skip("KEYGUARD_TEST_REDIS_URL not configured (run: eval $(scripts/test-services))")
