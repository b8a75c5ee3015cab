"""PATCH an endpoint's events and description, and disable it by hand (the services the
dashboard's Webhooks room uses): audited once when something changed, unknown events
refused, another project's endpoint a 404."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from keyguard.audit.models import AuditEvent
from keyguard.runtime import Runtime


async def _actions(runtime: Runtime, target: str) -> list[str]:
    async with runtime.sessions() as db:
        rows = await db.execute(select(AuditEvent.action).where(AuditEvent.target == target))
        return list(rows.scalars())


async def test_events_and_description_change_and_a_person_disables_an_endpoint(
    client: httpx.AsyncClient, runtime: Runtime, root_headers: dict[str, str], project_id: str
) -> None:
    base = f"/v1/projects/{project_id}/webhooks"
    made = await client.post(
        base, json={"url": "https://hooks.example.com/in", "events": ["*"]}, headers=root_headers
    )
    endpoint = made.json()["id"]
    url = f"{base}/{endpoint}"
    changed = await client.patch(
        url, json={"events": ["key.revoked"], "description": "ops"}, headers=root_headers
    )
    assert changed.status_code == 200
    assert (changed.json()["events"], changed.json()["description"]) == (["key.revoked"], "ops")
    same = await client.patch(url, json={"events": ["key.revoked"]}, headers=root_headers)
    assert same.status_code == 200
    assert (await _actions(runtime, endpoint)).count("webhook.endpoint_updated") == 1
    bad = await client.patch(url, json={"events": ["key.exploded"]}, headers=root_headers)
    assert (bad.status_code, bad.json()["code"]) == (422, "validation_failed")
    empty = await client.patch(url, json={"events": []}, headers=root_headers)
    assert empty.status_code == 422

    off = await client.post(f"{url}/disable", headers=root_headers)
    assert off.status_code == 200
    assert (off.json()["enabled"], off.json()["disabled_reason"]) == (False, "manual")
    assert "webhook.endpoint_disabled_manually" in await _actions(runtime, endpoint)
    on = await client.post(f"{url}/enable", headers=root_headers)
    assert (on.json()["enabled"], on.json()["disabled_reason"]) == (True, None)

    other = await client.post("/v1/projects", json={"name": "Other"}, headers=root_headers)
    elsewhere = f"/v1/projects/{other.json()['id']}/webhooks/{endpoint}"
    assert (await client.patch(elsewhere, json={}, headers=root_headers)).status_code == 404
    assert (await client.post(f"{elsewhere}/disable", headers=root_headers)).status_code == 404
