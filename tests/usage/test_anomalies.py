"""Anomalies (CONTRACT §10): each reason, triggered with a controllable clock, reported to
the audit log and the owners at most once per key and reason per hour, with thresholds
per project."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select, text

from helpers import POLL_SESSION, bearer, create_key
from keyguard.app import create_asgi
from keyguard.audit.models import AuditEvent
from keyguard.mail.models import MailMessage
from keyguard.runtime import Runtime
from keyguard.usage.anomalies import check_counts
from keyguard.webhooks.events import EVENT_TYPES

HOUR = 3600


async def anomalies(runtime: Runtime) -> list[dict]:
    async with runtime.sessions() as db:
        rows = await db.execute(
            select(AuditEvent.target, AuditEvent.data)
            .where(AuditEvent.action == "key.anomaly")
            .order_by(AuditEvent.seq)
        )
        return [{"key_id": target, **data} for target, data in rows.all()]


async def send(client, key: dict, n: int) -> None:
    for _ in range(n):
        await client.post("/v1/sessions", json=POLL_SESSION, headers=bearer(key["key"]))


@pytest.fixture
def elsewhere(runtime: Runtime):
    """Clients on other networks than the conftest client's 203.0.113.0/24."""

    def open_from(ip: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=create_asgi(runtime), client=(ip, 4000))
        return httpx.AsyncClient(transport=transport, base_url="https://testserver")

    return open_from


async def test_a_failure_burst_is_reported_once_an_hour(
    client, root_headers, project_id, runtime, clock
):
    clock.t = clock.t - clock.t % HOUR + 60
    key = await create_key(client, root_headers, project_id, ip_allowlist=["10.0.0.0/8"])
    await send(client, key, 19)
    await runtime.usage.flush()
    assert await check_counts(runtime) == 0  # 19 < 20
    await send(client, key, 1)
    await runtime.usage.flush()
    assert await check_counts(runtime) == 1
    await send(client, key, 30)
    await runtime.usage.flush()
    assert await check_counts(runtime) == 0  # once per key and reason per hour
    clock.advance(HOUR)
    await send(client, key, 20)
    await runtime.usage.flush()
    assert await check_counts(runtime) == 1
    found = await anomalies(runtime)
    assert [a["reason"] for a in found] == ["failure_burst", "failure_burst"]
    assert found[0] == {
        "key_id": key["id"],
        "reason": "failure_burst",
        "refusals": 20,
        "minutes": 5,
    }
    async with runtime.sessions() as db:
        mails = (
            (await db.execute(select(MailMessage.subject).where(MailMessage.kind == "key_anomaly")))
            .scalars()
            .all()
        )
    assert mails == [f"Many refused requests for the API key {key['id']}"] * 2
    assert "key.anomaly" in EVENT_TYPES


async def test_thresholds_are_per_project(client, root_headers, project_id, runtime):
    lowered = await client.patch(
        f"/v1/projects/{project_id}",
        json={"anomaly_thresholds": {"failure_burst": 3}},
        headers=root_headers,
    )
    assert lowered.status_code == 200
    assert lowered.json()["anomaly_thresholds"]["failure_burst"] == 3
    assert lowered.json()["anomaly_thresholds"]["spike_factor"] == 10  # defaults shown too
    key = await create_key(client, root_headers, project_id, ip_allowlist=["10.0.0.0/8"])
    await send(client, key, 3)
    await runtime.usage.flush()
    assert await check_counts(runtime) == 1
    for bad in ({"nope": 1}, {"failure_burst": -1}, {"spike_factor": True}, {"spike_factor": "9"}):
        refused = await client.patch(
            f"/v1/projects/{project_id}", json={"anomaly_thresholds": bad}, headers=root_headers
        )
        assert refused.status_code == 422, bad


async def test_a_success_from_a_new_network_is_reported_after_a_day_of_history(
    client, root_headers, project_id, runtime, clock, elsewhere
):
    key = await create_key(client, root_headers, project_id)
    await send(client, key, 1)
    async with elsewhere("198.51.100.20") as first_day:
        await send(first_day, key, 1)  # a second network on the first day: not news
    await runtime.usage.flush()
    assert await anomalies(runtime) == []
    clock.advance(2 * 86400)
    async with elsewhere("192.0.2.44") as stranger:
        await send(stranger, key, 1)
    async with elsewhere("192.0.2.45") as same_network:
        await send(same_network, key, 1)
    await send(client, key, 1)  # the usual network
    await runtime.usage.flush()
    assert await anomalies(runtime) == [
        {"key_id": key["id"], "reason": "new_network", "network": "192.0.2.0/24"}
    ]
    # Refusals never count as use of a network.
    limited = await create_key(client, root_headers, project_id, ip_allowlist=["10.0.0.0/8"])
    clock.advance(2 * 86400)
    async with elsewhere("100.64.0.1") as refused:
        await send(refused, limited, 3)
    await runtime.usage.flush()
    assert len(await anomalies(runtime)) == 1


async def test_a_traffic_spike_is_measured_against_the_day_before(
    client, root_headers, project_id, runtime, clock
):
    clock.t = clock.t - clock.t % HOUR + 60
    key = await create_key(client, root_headers, project_id)
    for _ in range(26):  # a day of history: two requests an hour
        await send(client, key, 2)
        clock.advance(HOUR)
    await runtime.usage.flush()
    assert await check_counts(runtime) == 0
    await send(client, key, 120)  # sixty times the usual hour
    await runtime.usage.flush()
    clock.advance(HOUR)  # the hour is whole now
    assert await check_counts(runtime) == 1
    (spike,) = await anomalies(runtime)
    assert spike == {
        "key_id": key["id"],
        "reason": "traffic_spike",
        "requests": 120,
        "hourly_average": 2.0,
    }


async def test_checks_without_an_address_are_no_new_network(
    client, root_headers, project_id, runtime, clock
):
    key = await create_key(client, root_headers, project_id)
    await send(client, key, 1)
    await runtime.usage.flush()
    clock.advance(2 * 86400)
    for ip in (None, "203.0.113.9:4431", "::ffff:203.0.113.10"):  # the usual /24, or none
        body = {"headers": {"Authorization": f"Bearer {key['key']}"}}
        if ip is not None:
            body["ip"] = ip
        verified = await client.post("/v1/keys/verify", json=body, headers=root_headers)
        assert verified.json()["valid"] is True
    await runtime.usage.flush()
    assert await anomalies(runtime) == []


async def test_counting_goes_on_when_the_network_check_fails_and_a_failed_report_claims_nothing(
    client, root_headers, project_id, runtime, clock, elsewhere
):
    key = await create_key(client, root_headers, project_id)
    await send(client, key, 1)
    await runtime.usage.flush()
    clock.advance(2 * 86400)
    # The mail outbox is not there for a moment: the report's transaction fails.
    async with runtime.transaction() as db:
        await db.execute(text("ALTER TABLE mail_outbox RENAME TO mail_outbox_away"))
    async with elsewhere("192.0.2.7") as stranger:
        await send(stranger, key, 3)
    await runtime.usage.flush()  # the counts are in; the check failed and logged
    async with runtime.transaction() as db:
        await db.execute(text("ALTER TABLE mail_outbox_away RENAME TO mail_outbox"))
    usage = await client.get(
        f"/v1/keys/{key['id']}/usage", params={"granularity": "day"}, headers=root_headers
    )
    assert usage.json()["totals"]["requests"] == 4
    assert await anomalies(runtime) == []
    async with elsewhere("192.0.2.8") as stranger:  # the same new network, seen again
        await send(stranger, key, 1)
    await runtime.usage.flush()
    assert [a["reason"] for a in await anomalies(runtime)] == ["new_network"]
