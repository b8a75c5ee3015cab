"""Failed checks of identified keys reach the audit log, coalesced (CONTRACT §10)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from keyguard.audit.models import AuditEvent
from keyguard.audit.refusals import ACTION, RefusalRecorder
from keyguard.audit.service import verify_chain
from keyguard.engine.facts import Credentials, RequestFacts
from keyguard.errors import InvalidKey, IpNotAllowed
from keyguard.keys.service import KeySpec, create_key


async def failed_checks(runtime) -> list[AuditEvent]:
    async with runtime.sessions() as session:
        rows = await session.execute(select(AuditEvent).where(AuditEvent.action == ACTION))
        return list(rows.scalars())


@pytest.fixture
def recorder(runtime) -> RefusalRecorder:
    """A recorder the test flushes by hand: the runtime's own one writes every 5 s of
    real time, which a slow run could hit between two assertions."""
    assert runtime.engine.on_refusal is runtime.refusals  # what the runtime wires up
    rec = RefusalRecorder(runtime)  # never start()ed: no background flush
    runtime.engine.on_refusal = rec
    return rec


async def test_refusals_of_a_known_key_are_audited_once_per_code_with_a_count(
    runtime, admin, recorder
):
    created = await create_key(
        runtime,
        admin.project.project.id,
        KeySpec(name="locked", ip_allowlist=("198.51.100.0/24",)),
        actor="test",
    )
    credentials = Credentials(created.issued.id, created.issued.secret)
    for ip in ("203.0.113.1", "203.0.113.2", "203.0.113.3"):
        with pytest.raises(IpNotAllowed):
            await runtime.engine.verify(credentials, RequestFacts(client_ip=ip))
    assert await failed_checks(runtime) == []  # nothing written per request
    assert await recorder.flush() == 1
    (event,) = await failed_checks(runtime)
    assert (event.target, event.project_id) == (created.issued.id, admin.project.project.id)
    assert event.data["code"] == "ip_not_allowed"
    assert (event.data["count"], event.data["last_ip"]) == (3, "203.0.113.3")
    assert created.issued.secret not in str(event.data)
    async with runtime.sessions() as session:
        assert await verify_chain(session) == []


async def test_unknown_keys_and_wrong_secrets_are_never_written(runtime, admin, recorder):
    created = await create_key(runtime, admin.project.project.id, KeySpec(name="k"), actor="t")
    stranger = runtime.key_ids.issue("aptr", "live")
    for credentials in (
        Credentials(stranger.id, stranger.secret),
        Credentials(created.issued.id, stranger.secret),
    ):
        with pytest.raises(InvalidKey):
            await runtime.engine.verify(credentials, RequestFacts())
    assert await recorder.flush() == 0
    assert await failed_checks(runtime) == []


async def test_memory_is_bounded_and_overflow_is_reported(runtime):
    recorder = RefusalRecorder(runtime, max_buckets=2)
    for i in range(5):
        recorder(f"aptr_live_{i:016d}", None, "ip_not_allowed", None)
    assert await recorder.flush() == 3  # two buckets and one "dropped" event
    dropped = [e for e in await failed_checks(runtime) if "dropped" in e.data]
    assert dropped[0].data == {"dropped": 3}
