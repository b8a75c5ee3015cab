"""A key-cache miss reads the key in one statement; on a SQLite file it runs whole in a
worker thread on a plain connection. Both reads must make the same record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives import serialization

from helpers import self_signed
from keyguard.clock import FrozenClock
from keyguard.crypto.totp import totp_code
from keyguard.keys import service as keys
from keyguard.keys.repository import load_key_record, read_key_record
from keyguard.restrictions import service as restrictions
from keyguard.runtime import Runtime
from keyguard.storage.db import create_reader


def _certificate(cn: str, now: datetime) -> str:
    cert, _ = self_signed(cn, now - timedelta(hours=1), now + timedelta(days=1))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


async def _full_key(runtime: Runtime, project_id: str, clock: FrozenClock) -> str:
    """A key with every restriction that lives in its row or beside it."""
    now = datetime.fromtimestamp(clock.now(), UTC)
    spec = keys.KeySpec(
        name="everything",
        scopes=("read", "write"),
        expires_at=now + timedelta(days=30),
        ip_allowlist=("203.0.113.0/24", "2001:db8::/32"),
        allowed_domains=("*.example.com",),
        rate_limit=(10, 60),
    )
    key_id = (await keys.create_key(runtime, project_id, spec, actor="test")).issued.id
    enrolment = await restrictions.start_totp(runtime, key_id, actor="test")
    code = totp_code(enrolment.secret, clock.now())
    await restrictions.confirm_totp(runtime, key_id, code, actor="test")
    await restrictions.set_signing_secret(runtime, key_id, actor="test")
    for cn in ("one", "two"):
        await restrictions.add_certificate(runtime, key_id, _certificate(cn, now), actor="test")
    return key_id


async def test_the_thread_read_makes_the_same_record_as_the_async_one(
    runtime: Runtime, project_id: str, clock: FrozenClock
) -> None:
    key_id = await _full_key(runtime, project_id, clock)
    async with runtime.sessions() as session:
        expected = await load_key_record(session, runtime.envelope, key_id)
    assert expected is not None
    assert len(expected.certificate_fingerprints) == 2
    assert expected.totp_secret is not None
    assert expected.signing_secret is not None
    reader = create_reader(runtime.settings.effective_database_url)
    if reader is None:  # PostgreSQL: the async read is the only one
        assert runtime.db.dialect.name == "postgresql"
        return
    try:
        assert read_key_record(reader, runtime.envelope, key_id) == expected
        assert read_key_record(reader, runtime.envelope, "kg_live_nosuchkey") is None
    finally:
        reader.dispose()


async def test_a_key_without_certificates_has_none(runtime: Runtime, project_id: str) -> None:
    created = await keys.create_key(runtime, project_id, keys.KeySpec(name="plain"), actor="t")
    async with runtime.sessions() as session:
        record = await load_key_record(session, runtime.envelope, created.issued.id)
    assert record is not None
    assert (record.certificate_fingerprints, record.certificate_validity) == (frozenset(), {})


def test_no_reader_for_postgresql_or_a_database_in_memory() -> None:
    assert create_reader("postgresql+asyncpg://u:p@127.0.0.1/db") is None
    assert create_reader("sqlite+aiosqlite:///:memory:") is None
    assert create_reader("sqlite+aiosqlite://") is None
