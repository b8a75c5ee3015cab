"""Key age (CONTRACT §3, seed 003 "rotate every 90 days"): every key knows when it should be
rotated, owners are reminded 14 and 3 days ahead (once each), and a project can make the
deadline binding."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from helpers import POLL_SESSION, bearer, create_key
from keyguard.audit.models import AuditEvent
from keyguard.keys.age import warn_rotation_due
from keyguard.mail.models import MailMessage

DAY = 86400


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_a_key_is_due_for_rotation_at_its_projects_maximum_age(
    client, root_headers, project_id, clock
):
    key = await create_key(client, root_headers, project_id)
    assert at(key["rotate_by"]) - at(key["created_at"]) == timedelta(days=90)
    assert key["rotation_due"] is False
    revoked = await create_key(client, root_headers, project_id, name="revoked")
    await client.delete(f"/v1/keys/{revoked['id']}", headers=root_headers)
    clock.advance(90 * DAY)
    shown = (await client.get(f"/v1/keys/{key['id']}", headers=root_headers)).json()
    assert shown["rotation_due"] is True
    due = await client.get(
        f"/v1/projects/{project_id}/keys", params={"rotation_due": "true"}, headers=root_headers
    )
    assert [k["id"] for k in due.json()["data"]] == [key["id"]]  # not the revoked one


async def test_the_maximum_age_moves_every_deadline(client, root_headers, project_id, runtime):
    key = await create_key(client, root_headers, project_id)
    changed = await client.patch(
        f"/v1/projects/{project_id}", json={"max_key_age_days": 30}, headers=root_headers
    )
    assert changed.status_code == 200
    assert changed.json()["max_key_age_days"] == 30
    shown = (await client.get(f"/v1/keys/{key['id']}", headers=root_headers)).json()
    assert at(shown["rotate_by"]) - at(shown["created_at"]) == timedelta(days=30)
    for bad in ({"max_key_age_days": 0}, {"max_key_age_days": 3651}, {"nope": True}):
        refused = await client.patch(f"/v1/projects/{project_id}", json=bad, headers=root_headers)
        assert refused.status_code == 422
    async with runtime.sessions() as db:
        actions = (await db.execute(select(AuditEvent.action))).scalars().all()
    assert actions.count("project.updated") == 1


async def test_an_enforced_maximum_age_stops_the_key_at_once(
    client, root_headers, project_id, clock
):
    key = await create_key(client, root_headers, project_id)
    clock.advance(91 * DAY)
    works = await client.post("/v1/sessions", json=POLL_SESSION, headers=bearer(key["key"]))
    assert works.status_code == 201  # due, but advice only
    enforce = await client.patch(
        f"/v1/projects/{project_id}", json={"enforce_max_key_age": True}, headers=root_headers
    )
    assert enforce.json()["enforce_max_key_age"] is True
    refused = await client.post("/v1/sessions", json=POLL_SESSION, headers=bearer(key["key"]))
    assert refused.status_code == 401
    assert refused.json()["code"] == "key_expired"


async def test_a_regenerated_secret_starts_a_new_age(client, root_headers, project_id, clock):
    key = await create_key(client, root_headers, project_id)
    clock.advance(50 * DAY)
    fresh = await client.post(f"/v1/keys/{key['id']}/regenerate", headers=root_headers)
    assert at(fresh.json()["rotate_by"]) - at(key["rotate_by"]) == timedelta(days=50)


async def test_owners_are_warned_fourteen_and_three_days_ahead_once_each(
    client, root_headers, project_id, runtime, clock
):
    key = await create_key(client, root_headers, project_id, name="billing")

    async def warnings() -> list[tuple[str, str]]:
        async with runtime.sessions() as db:
            audited = await db.execute(
                select(AuditEvent.data).where(AuditEvent.action == "key.rotation_due")
            )
            mails = await db.execute(
                select(MailMessage.subject).where(MailMessage.kind == "rotation_due")
            )
            pairs = zip(audited.scalars(), mails.scalars(), strict=True)
            return [(str(data["warning"]), subject) for data, subject in pairs]

    assert await warn_rotation_due(runtime) == 0
    clock.advance((90 - 14) * DAY + 60)
    assert await warn_rotation_due(runtime) == 1
    assert await warn_rotation_due(runtime) == 0  # once
    clock.advance(11 * DAY)
    assert await warn_rotation_due(runtime) == 1
    assert await warn_rotation_due(runtime) == 0
    assert await warnings() == [
        ("14", "Rotate the API key “billing” within 14 days"),
        ("3", "Rotate the API key “billing” within 3 days"),
    ]
    # A revoked key is never warned about.
    other = await create_key(client, root_headers, project_id, name="gone")
    await client.delete(f"/v1/keys/{other['id']}", headers=root_headers)
    clock.advance(89 * DAY)
    assert await warn_rotation_due(runtime) == 0
    del key


async def test_an_overdue_key_gets_only_its_most_urgent_warning(
    client, root_headers, project_id, runtime, clock
):
    await create_key(client, root_headers, project_id)
    clock.advance(89 * DAY)  # first seen one day before its deadline
    assert await warn_rotation_due(runtime) == 1
    async with runtime.sessions() as db:
        warnings = (
            (
                await db.execute(
                    select(AuditEvent.data).where(AuditEvent.action == "key.rotation_due")
                )
            )
            .scalars()
            .all()
        )
    assert [w["warning"] for w in warnings] == [3]


async def test_a_rotated_key_is_neither_due_nor_warned(
    client, root_headers, project_id, runtime, clock
):
    key = await create_key(client, root_headers, project_id)
    clock.advance(80 * DAY)
    await client.post(
        f"/v1/keys/{key['id']}/rotate", json={"grace_seconds": 30 * DAY}, headers=root_headers
    )
    clock.advance(11 * DAY)  # past the old key's rotate_by, still in its grace period
    assert await warn_rotation_due(runtime) == 0
    old = (await client.get(f"/v1/keys/{key['id']}", headers=root_headers)).json()
    assert old["rotation_due"] is False
    due = await client.get(
        f"/v1/projects/{project_id}/keys", params={"rotation_due": "true"}, headers=root_headers
    )
    assert due.json()["data"] == []


async def test_a_deadline_moved_later_is_warned_again_when_its_time_comes(
    client, root_headers, project_id, runtime, clock
):
    await create_key(client, root_headers, project_id)
    clock.advance(88 * DAY)
    assert await warn_rotation_due(runtime) == 1  # the 3-day warning
    moved = await client.patch(
        f"/v1/projects/{project_id}", json={"max_key_age_days": 100}, headers=root_headers
    )
    assert moved.status_code == 200
    assert await warn_rotation_due(runtime) == 0  # 12 days left: the 3-day one is ahead
    clock.advance(10 * DAY)
    assert await warn_rotation_due(runtime) == 1
