"""A person's access token on Keyguard's own management API (seed 002's entitlements): it
acts as that person in its app's project only, as far as its scopes and the person's
role today allow; everything else is 404 (not entitled) or 403 (scope or role)."""

from __future__ import annotations

import pytest

from keyguard.projects import service as projects
from oauth_helpers import access_token, register_app

READ, WRITE = "keyguard:read", "keyguard:keys:write"


@pytest.fixture
async def delegated(runtime, project_id):
    return await register_app(runtime, project_id, scopes=(READ, WRITE, "read"))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def token_for(runtime, app, person_id, *scopes):
    return await access_token(
        runtime, project_id=app.app.project_id, app=app, subject=person_id, scopes=scopes
    )


async def test_a_persons_token_reads_and_writes_as_its_scopes_allow(
    runtime, client, admin, project_id, delegated
):
    reader = await token_for(runtime, delegated, admin.account.id, READ)
    listed = await client.get(f"/v1/projects/{project_id}/keys", headers=bearer(reader))
    assert listed.status_code == 200, listed.text
    refused = await client.post(
        f"/v1/projects/{project_id}/keys",
        json={"name": "by token", "environment": "test"},
        headers=bearer(reader),
    )
    assert refused.status_code == 403
    assert refused.json()["code"] == "scope_missing"

    writer = await token_for(runtime, delegated, admin.account.id, READ, WRITE)
    made = await client.post(
        f"/v1/projects/{project_id}/keys",
        json={"name": "by token", "environment": "test"},
        headers=bearer(writer),
    )
    assert made.status_code == 201, made.text


async def test_other_projects_are_not_found_even_the_persons_own(runtime, client, admin, delegated):
    mine_too = await projects.create_project(
        runtime, name="Also mine", key_prefix=None, actor="test", owner=admin.account.id
    )
    token = await token_for(runtime, delegated, admin.account.id, READ)
    answer = await client.get(f"/v1/projects/{mine_too.project.id}/keys", headers=bearer(token))
    assert answer.status_code == 404
    listing = await client.get("/v1/projects", headers=bearer(token))
    assert listing.status_code == 403
    assert listing.json()["code"] == "root_key_required"


async def test_the_role_of_today_limits_the_token(runtime, client, admin, project_id, delegated):
    from sqlalchemy import update

    from keyguard.accounts.models import Membership

    token = await token_for(runtime, delegated, admin.account.id, READ, WRITE)
    async with runtime.transaction() as db:
        await db.execute(update(Membership).values(role="viewer"))
    refused = await client.post(
        f"/v1/projects/{project_id}/keys",
        json={"name": "by token", "environment": "test"},
        headers=bearer(token),
    )
    assert refused.status_code == 403
    assert refused.json()["code"] == "role_too_low"
    async with runtime.transaction() as db:
        await db.execute(Membership.__table__.delete())
    gone = await client.get(f"/v1/projects/{project_id}/keys", headers=bearer(token))
    assert gone.status_code == 404


async def test_members_apps_and_secrets_are_never_delegated(
    runtime, client, admin, project_id, delegated
):
    token = await token_for(runtime, delegated, admin.account.id, READ, WRITE)
    for path, body in (
        (f"/v1/projects/{project_id}/oauth-apps", {"name": "mine", "scopes": ["read"]}),
        (f"/v1/projects/{project_id}/webhook-secret/rotate", {}),
    ):
        answer = await client.post(path, headers=bearer(token), json=body)
        assert answer.status_code == 403, (path, answer.text)
        assert answer.json()["code"] == "root_key_required"


async def test_a_clients_own_token_manages_nothing(runtime, client, project_id, delegated):
    token = await access_token(runtime, project_id=project_id, app=delegated, scopes=(READ,))
    answer = await client.get(f"/v1/projects/{project_id}/keys", headers=bearer(token))
    assert (answer.status_code, answer.json()["code"]) == (403, "root_key_required")
