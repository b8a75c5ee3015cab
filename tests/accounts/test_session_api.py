"""A signed-in person uses the management API through their session: everything a root
key does, limited by their role; a project they are not in does not exist; a change needs
the session's CSRF token; an ended session is refused."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import select

from account_pages import ADMIN_EMAIL, ADMIN_PASSWORD, csrf_of, sign_in
from keyguard.accounts.models import Account, Membership
from keyguard.audit.models import AuditEvent
from keyguard.runtime import Runtime

KEY = {"name": "from the browser", "environment": "test"}


async def csrf_header(client: httpx.AsyncClient) -> dict[str, str]:
    page = (await client.get("/account/security")).text
    meta = re.search(r'<meta name="csrf-token" content="([^"]+)">', page)
    assert meta, "signed-in pages carry the CSRF token for scripts"
    assert meta.group(1) == csrf_of(page)
    return {"X-CSRF-Token": meta.group(1)}


@pytest.fixture
async def owner(client, admin) -> httpx.AsyncClient:
    assert (await sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)).status_code == 303
    return client


async def with_role(runtime: Runtime, project_id: str, role: str) -> None:
    """Give the signed-in admin ``role`` in ``project_id`` instead of owner."""
    async with runtime.transaction() as db:
        admin = (await db.execute(select(Account).where(Account.email == ADMIN_EMAIL))).scalar_one()
        member = await db.get(Membership, (project_id, admin.id))
        assert member is not None
        member.role = role


async def test_an_owner_manages_keys_through_the_session(owner, runtime, project_id):
    listed = await owner.get(f"/v1/projects/{project_id}/keys")
    assert listed.status_code == 200
    created = await owner.post(
        f"/v1/projects/{project_id}/keys", json=KEY, headers=await csrf_header(owner)
    )
    assert created.status_code == 201, created.text
    key_id = created.json()["id"]
    assert (await owner.get(f"/v1/keys/{key_id}")).status_code == 200
    revoked = await owner.delete(f"/v1/keys/{key_id}", headers=await csrf_header(owner))
    assert revoked.status_code == 204
    async with runtime.sessions() as db:
        admin_id = (
            await db.execute(select(Account.id).where(Account.email == ADMIN_EMAIL))
        ).scalar_one()
        actors = (
            await db.execute(select(AuditEvent.actor).where(AuditEvent.action.like("key.%")))
        ).scalars()
        assert set(actors) == {admin_id}


async def test_a_change_without_the_csrf_token_is_refused_and_changes_nothing(owner, project_id):
    before = (await owner.get(f"/v1/projects/{project_id}/keys")).json()["data"]
    for headers in ({}, {"X-CSRF-Token": "forged"}):
        refused = await owner.post(f"/v1/projects/{project_id}/keys", json=KEY, headers=headers)
        assert refused.status_code == 403
        assert refused.json()["code"] == "csrf_invalid"
        assert refused.headers["content-type"] == "application/problem+json"
    after = (await owner.get(f"/v1/projects/{project_id}/keys")).json()["data"]
    assert after == before


async def test_a_viewer_reads_and_changes_nothing(owner, runtime, project_id, root_headers):
    key = await owner.post(
        f"/v1/projects/{project_id}/keys", json=KEY, headers=await csrf_header(owner)
    )
    await with_role(runtime, project_id, "viewer")
    assert (await owner.get(f"/v1/projects/{project_id}/keys")).status_code == 200
    headers = await csrf_header(owner)
    for method, path in (
        ("POST", f"/v1/projects/{project_id}/keys"),
        ("DELETE", f"/v1/keys/{key.json()['id']}"),
        ("POST", f"/v1/keys/{key.json()['id']}/rotate"),
        ("POST", f"/v1/projects/{project_id}/webhooks"),
    ):
        refused = await owner.request(method, path, json=KEY, headers=headers)
        assert refused.status_code == 403, (path, refused.text)
        assert refused.json()["code"] == "role_too_low"
    still = await owner.get(f"/v1/keys/{key.json()['id']}", headers=root_headers)
    assert still.json()["revoked_at"] is None


async def test_a_developer_cannot_rotate_the_webhook_secret_and_an_admin_can(
    owner, runtime, project_id
):
    path = f"/v1/projects/{project_id}/webhook-secret/rotate"
    await with_role(runtime, project_id, "developer")
    refused = await owner.post(path, headers=await csrf_header(owner))
    assert refused.status_code == 403
    assert refused.json()["code"] == "role_too_low"
    await with_role(runtime, project_id, "admin")
    rotated = await owner.post(path, headers=await csrf_header(owner))
    assert rotated.status_code in (200, 201), rotated.text


async def test_a_project_you_are_not_in_does_not_exist(owner, runtime, root_headers):
    private = await owner.post("/v1/projects", json={"name": "Private"}, headers=root_headers)
    private_id = private.json()["id"]
    key = await owner.post(f"/v1/projects/{private_id}/keys", json=KEY, headers=root_headers)
    # The root key's account owns what it creates: take this project away from them.
    async with runtime.transaction() as db:
        member = (
            await db.execute(select(Membership).where(Membership.project_id == private_id))
        ).scalar_one()
        await db.delete(member)
    headers = await csrf_header(owner)
    for method, path in (
        ("GET", f"/v1/projects/{private_id}"),
        ("GET", f"/v1/projects/{private_id}/keys"),
        ("GET", f"/v1/keys/{key.json()['id']}"),
        ("DELETE", f"/v1/keys/{key.json()['id']}"),
        ("GET", "/v1/projects/proj_doesnotexist/keys"),
        ("GET", "/v1/keys/key_doesnotexist"),
    ):
        hidden = await owner.request(method, path, headers=headers)
        assert hidden.status_code == 404, (path, hidden.text)
    listed = {p["id"] for p in (await owner.get("/v1/projects")).json()}
    assert private_id not in listed
    assert len(listed) == 1  # the default project, where the admin is owner


async def test_people_own_the_projects_they_create(owner, runtime):
    created = await owner.post(
        "/v1/projects", json={"name": "Mine"}, headers=await csrf_header(owner)
    )
    assert created.status_code == 201, created.text
    mine = created.json()["id"]
    async with runtime.sessions() as db:
        member = (
            await db.execute(select(Membership).where(Membership.project_id == mine))
        ).scalar_one()
    assert member.role == "owner"
    names = {p["name"] for p in (await owner.get("/v1/projects")).json()}
    assert "Mine" in names


async def test_the_verify_api_is_for_root_keys_only(owner):
    refused = await owner.post(
        "/v1/keys/verify", json={"headers": {}}, headers=await csrf_header(owner)
    )
    assert refused.status_code == 403
    assert refused.json()["code"] == "root_key_required"


async def test_after_sign_out_the_cookie_opens_nothing(owner, project_id):
    cookie = owner.cookies.get("__Host-keyguard-session")
    page = await owner.get("/account/security")
    await owner.post("/logout", data={"csrf_token": csrf_of(page.text)})
    owner.cookies.set("__Host-keyguard-session", cookie)
    refused = await owner.get(f"/v1/projects/{project_id}/keys")
    assert refused.status_code == 401
    assert refused.json()["code"] == "session_expired"


async def test_only_an_owner_releases_a_quarantined_key(owner, runtime, project_id, root_headers):
    """A leaked secret comes back only by an owner's decision: not a developer's (who may
    be the one who leaked it), not an admin's."""
    from helpers import POLL_SESSION, bearer, create_key
    from keyguard.keys import service as keys

    key = await create_key(owner, root_headers, project_id)
    await keys.quarantine_key(runtime, key["id"], actor="test")
    path = f"/v1/keys/{key['id']}/release"
    for role in ("developer", "admin"):
        await with_role(runtime, project_id, role)
        refused = await owner.post(path, headers=await csrf_header(owner))
        assert (refused.status_code, refused.json()["code"]) == (403, "role_too_low")
        still = await owner.post("/v1/sessions", json=POLL_SESSION, headers=bearer(key["key"]))
        assert still.json()["code"] == "key_quarantined"
    await with_role(runtime, project_id, "owner")
    released = await owner.post(path, headers=await csrf_header(owner))
    assert released.status_code == 200, released.text
