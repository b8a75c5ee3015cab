"""Key management over HTTP (CONTRACT §3), on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from helpers import counts, create_key
from keyguard.clock import FrozenClock, utc_from_ts
from keyguard.runtime import Runtime
from keyguard.webhooks.models import WebhookMessage

SESSION = {"delivery_mode": "poll"}


async def use(client: httpx.AsyncClient, key: str) -> httpx.Response:
    return await client.post(
        "/v1/sessions", json=SESSION, headers={"Authorization": f"Bearer {key}"}
    )


async def test_created_key_has_prefix_environment_and_works(client, root_headers, project_id):
    created = await create_key(
        client, root_headers, project_id, environment="live", scopes=["sessions:write"]
    )
    assert created["key"].startswith("aptr_live_")
    assert created["key"] == created["id"] + created["secret"]
    assert created["status"] == "active"
    assert (await use(client, created["key"])).status_code == 201


async def test_test_environment_key_is_prefixed_test(client, root_headers, project_id):
    created = await create_key(client, root_headers, project_id, environment="test")
    assert created["key"].startswith("aptr_test_")


async def test_secret_is_never_shown_again(client, root_headers, project_id):
    created = await create_key(client, root_headers, project_id)
    got = await client.get(f"/v1/keys/{created['id']}", headers=root_headers)
    listed = await client.get(f"/v1/projects/{project_id}/keys", headers=root_headers)
    for response in (got, listed):
        assert response.status_code == 200
        assert created["secret"] not in response.text
        assert (
            "secret" not in response.json()
            if isinstance(response.json(), dict) and "data" not in response.json()
            else True
        )
    assert all("key" not in k and "secret" not in k for k in listed.json()["data"])


async def test_list_is_paginated_with_a_cursor(client, root_headers, project_id):
    ids = [
        (await create_key(client, root_headers, project_id, name=f"k{i}"))["id"] for i in range(5)
    ]
    seen, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (
            await client.get(f"/v1/projects/{project_id}/keys", params=params, headers=root_headers)
        ).json()
        seen += [k["id"] for k in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids)
    assert len(seen) == len(set(seen))


async def test_patch_changes_name_scopes_and_metadata(client, root_headers, project_id):
    created = await create_key(client, root_headers, project_id)
    r = await client.patch(
        f"/v1/keys/{created['id']}",
        json={"name": "renamed", "scopes": ["a", "b"], "metadata": {"team": "x"}},
        headers=root_headers,
    )
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["scopes"], r.json()["metadata"]) == (
        "renamed",
        ["a", "b"],
        {"team": "x"},
    )


async def test_revoked_key_is_refused_on_the_next_request(client, root_headers, project_id):
    created = await create_key(client, root_headers, project_id)
    assert (await use(client, created["key"])).status_code == 201
    assert (
        await client.delete(f"/v1/keys/{created['id']}", headers=root_headers)
    ).status_code == 204
    r = await use(client, created["key"])
    assert r.status_code == 401
    assert r.json()["code"] == "key_revoked"
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert (await client.get(f"/v1/keys/{created['id']}", headers=root_headers)).json()[
        "status"
    ] == "revoked"


async def test_revoked_key_cannot_be_regenerated_or_rotated(client, root_headers, project_id):
    created = await create_key(client, root_headers, project_id)
    await client.delete(f"/v1/keys/{created['id']}", headers=root_headers)
    for action in ("regenerate", "rotate"):
        r = await client.post(f"/v1/keys/{created['id']}/{action}", headers=root_headers)
        assert r.status_code == 409
        assert r.json()["code"] == "key_revoked"
    assert (await use(client, created["key"])).json()["code"] == "key_revoked"


async def test_regenerate_keeps_the_id_and_kills_the_old_secret(client, root_headers, project_id):
    created = await create_key(client, root_headers, project_id)
    r = await client.post(f"/v1/keys/{created['id']}/regenerate", headers=root_headers)
    assert r.status_code == 200
    fresh = r.json()
    assert fresh["id"] == created["id"]
    assert fresh["key"] != created["key"]
    assert (await use(client, created["key"])).status_code == 401
    assert (await use(client, fresh["key"])).status_code == 201


async def test_rotation_keeps_both_keys_valid_during_grace(
    client, root_headers, project_id, clock: FrozenClock
):
    created = await create_key(client, root_headers, project_id, scopes=["s1"], metadata={"a": 1})
    r = await client.post(
        f"/v1/keys/{created['id']}/rotate", json={"grace_seconds": 60}, headers=root_headers
    )
    assert r.status_code == 201
    new = r.json()
    assert new["id"] != created["id"]
    assert (new["scopes"], new["metadata"], new["rotated_from"]) == (
        ["s1"],
        {"a": 1},
        created["id"],
    )
    assert (await use(client, created["key"])).status_code == 201
    assert (await use(client, new["key"])).status_code == 201
    clock.advance(61)
    old = await use(client, created["key"])
    assert (old.status_code, old.json()["code"]) == (401, "key_expired")
    assert (await use(client, new["key"])).status_code == 201


async def test_expired_key_is_refused(client, root_headers, project_id, clock: FrozenClock):
    expires = utc_from_ts(clock.now() + 30).isoformat()
    created = await create_key(client, root_headers, project_id, expires_at=expires)
    assert (await use(client, created["key"])).status_code == 201
    clock.advance(31)
    r = await use(client, created["key"])
    assert (r.status_code, r.json()["code"]) == (401, "key_expired")


async def test_project_keys_cannot_manage_keys(client, root_headers, project_id):
    created = await create_key(client, root_headers, project_id)
    r = await client.get(
        f"/v1/projects/{project_id}/keys", headers={"Authorization": f"Bearer {created['key']}"}
    )
    assert (r.status_code, r.json()["code"]) == (403, "root_key_required")


async def test_unknown_key_and_project_are_404(client, root_headers):
    assert (
        await client.get("/v1/keys/aptr_live_AAAAAAAAAAAAAAAA", headers=root_headers)
    ).status_code == 404
    r = await client.post(
        "/v1/projects/proj_nope/keys",
        json={"name": "x", "environment": "live"},
        headers=root_headers,
    )
    assert (r.status_code, r.json()["code"]) == (404, "not_found")


async def test_projects_can_be_created_listed_and_fetched(client, root_headers):
    r = await client.post(
        "/v1/projects", json={"name": "Payments", "key_prefix": "pay"}, headers=root_headers
    )
    assert r.status_code == 201
    project = r.json()
    assert project["webhook_secret"].startswith("whsec_")
    got = await client.get(f"/v1/projects/{project['id']}", headers=root_headers)
    assert got.json()["key_prefix"] == "pay"
    assert "webhook_secret" not in got.json()
    listed = await client.get("/v1/projects", headers=root_headers)
    assert project["id"] in [p["id"] for p in listed.json()]
    key = await create_key(client, root_headers, project["id"])
    assert key["key"].startswith("pay_live_")


async def test_a_rotated_key_cannot_be_rotated_again(client, root_headers, project_id):
    created = await create_key(client, root_headers, project_id)
    first = await client.post(
        f"/v1/keys/{created['id']}/rotate", json={"grace_seconds": 5}, headers=root_headers
    )
    assert first.status_code == 201
    again = await client.post(
        f"/v1/keys/{created['id']}/rotate", json={"grace_seconds": 100}, headers=root_headers
    )
    assert (again.status_code, again.json()["code"]) == (409, "key_already_rotated")
    successor = await client.post(f"/v1/keys/{first.json()['id']}/rotate", headers=root_headers)
    assert successor.status_code == 201


@pytest.mark.parametrize("action", ["rotate", "regenerate"])
async def test_an_expired_key_cannot_be_rotated_or_regenerated(
    client, root_headers, project_id, clock, runtime, action
):
    created = await create_key(
        client, root_headers, project_id, expires_at=utc_from_ts(clock.now() + 10).isoformat()
    )
    clock.advance(11)
    before = await counts(runtime)
    r = await client.post(f"/v1/keys/{created['id']}/{action}", headers=root_headers)
    assert (r.status_code, r.json()["code"]) == (409, "key_expired")
    assert "secret" not in r.json()
    assert await counts(runtime) == before
    assert (await use(client, created["key"])).json()["code"] == "key_expired"


async def test_a_key_must_name_its_environment(client, root_headers, project_id, runtime):
    before = await counts(runtime)
    r = await client.post(
        f"/v1/projects/{project_id}/keys", json={"name": "x"}, headers=root_headers
    )
    assert (r.status_code, r.json()["code"]) == (422, "validation_failed")
    assert "environment" in r.json()["errors"][0]["loc"]
    assert await counts(runtime) == before


@pytest.mark.parametrize("expires_at", [None, "later", "sooner"])
async def test_rotation_is_final_the_old_key_expiry_cannot_be_moved(
    client, root_headers, project_id, clock, runtime, expires_at
):
    created = await create_key(client, root_headers, project_id)
    r = await client.post(
        f"/v1/keys/{created['id']}/rotate", json={"grace_seconds": 60}, headers=root_headers
    )
    assert r.status_code == 201
    successor = r.json()["id"]
    old = (await client.get(f"/v1/keys/{created['id']}", headers=root_headers)).json()
    before = await counts(runtime)
    when = {"later": 86_400 * 365, "sooner": 30}
    value = None if expires_at is None else utc_from_ts(clock.now() + when[expires_at])
    r = await client.patch(
        f"/v1/keys/{created['id']}",
        json={"expires_at": value.isoformat() if value else None},
        headers=root_headers,
    )
    assert (r.status_code, r.json()["code"]) == (409, "key_already_rotated")
    assert r.json()["rotated_to"] == successor
    assert await counts(runtime) == before
    assert (await client.get(f"/v1/keys/{created['id']}", headers=root_headers)).json() == old
    clock.advance(61)
    assert (await use(client, created["key"])).json()["code"] == "key_expired"


async def test_a_rotated_key_can_still_be_renamed(client, root_headers, project_id):
    created = await create_key(client, root_headers, project_id)
    await client.post(f"/v1/keys/{created['id']}/rotate", headers=root_headers)
    r = await client.patch(
        f"/v1/keys/{created['id']}", json={"name": "old one"}, headers=root_headers
    )
    assert (r.status_code, r.json()["name"]) == (200, "old one")


async def webhook_messages(runtime: Runtime) -> int:
    async with runtime.sessions() as db:
        query = select(func.count()).select_from(WebhookMessage)
        return int((await db.execute(query)).scalar_one())


async def test_an_empty_patch_changes_nothing(client, root_headers, project_id, clock, runtime):
    hook = {"url": "https://hooks.example.com/keyguard", "events": ["*"]}
    r = await client.post(f"/v1/projects/{project_id}/webhooks", json=hook, headers=root_headers)
    assert r.status_code == 201, r.text
    created = await create_key(client, root_headers, project_id)
    key = (await client.get(f"/v1/keys/{created['id']}", headers=root_headers)).json()
    clock.advance(5)
    before = (await counts(runtime), await webhook_messages(runtime))
    r = await client.patch(f"/v1/keys/{created['id']}", json={}, headers=root_headers)
    assert r.status_code == 200, r.text
    assert r.json() == key  # updated_at included
    assert (await counts(runtime), await webhook_messages(runtime)) == before
    # A real change still writes its event (the endpoint above does receive key events).
    r = await client.patch(f"/v1/keys/{created['id']}", json={"name": "n"}, headers=root_headers)
    assert r.json()["updated_at"] != key["updated_at"]
    assert await webhook_messages(runtime) == before[1] + 1


async def test_an_empty_patch_of_a_revoked_key_is_still_409(client, root_headers, project_id):
    created = await create_key(client, root_headers, project_id)
    await client.delete(f"/v1/keys/{created['id']}", headers=root_headers)
    r = await client.patch(f"/v1/keys/{created['id']}", json={}, headers=root_headers)
    assert (r.status_code, r.json()["code"]) == (409, "key_revoked")
