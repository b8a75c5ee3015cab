"""All four presentation forms (CONTRACT §4) work on a protected route and on verify."""

from __future__ import annotations

import base64

import pytest

from helpers import POLL_SESSION, bearer, create_key


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


FORMS = {
    "bearer": lambda k: {"Authorization": f"Bearer {k['key']}"},
    "api-key": lambda k: {"API-Key": k["key"]},
    "api-key-lowercase": lambda k: {"api-key": k["key"]},
    "x-api-key": lambda k: {"X-API-Key": k["key"]},
    "id-and-secret": lambda k: {"x-api-key": b64(k["id"]), "x-api-secret": b64(k["secret"])},
    "apikey-scheme": lambda k: {"Authorization": f"ApiKey {b64(k['id'] + ':' + k['secret'])}"},
}


@pytest.mark.parametrize("form", FORMS)
async def test_every_form_creates_and_reads_a_session(client, root_headers, project_id, form):
    key = await create_key(client, root_headers, project_id)
    headers = FORMS[form](key)
    created = await client.post("/v1/sessions", json=POLL_SESSION, headers=headers)
    assert created.status_code == 201, created.text
    got = await client.get(f"/v1/sessions/{created.json()['id']}", headers=headers)
    assert got.status_code == 200
    assert got.json()["id"] == created.json()["id"]


async def test_the_seed_curl_works(client, root_headers, project_id):
    key = await create_key(client, root_headers, project_id)
    r = await client.post(
        "/v1/sessions",
        headers={"Authorization": f"Bearer {key['key']}", "Content-Type": "application/json"},
        content='{\n    "delivery_mode": "webhook",\n    "webhook_url": "https://your-app.com/webhook",'
        '\n    "password": "claim-4521-pin"\n  }',
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["upload_url"].endswith(f"/upload/{body['id']}")
    assert body["password_protected"] is True
    assert "claim-4521-pin" not in r.text
    got = await client.get(f"/v1/sessions/{body['id']}", headers=bearer(key["key"]))
    assert "password" not in got.json()
    assert got.json()["webhook_url"] == "https://your-app.com/webhook"


async def test_session_password_is_stored_bcrypt_hashed(client, root_headers, project_id, runtime):
    from keyguard.uploads.models import UploadSession

    key = await create_key(client, root_headers, project_id)
    r = await client.post(
        "/v1/sessions",
        json={"delivery_mode": "poll", "password": "claim-4521-pin"},
        headers=bearer(key["key"]),
    )
    async with runtime.sessions() as db:
        row = await db.get(UploadSession, r.json()["id"])
    assert row.password_hash.startswith("$2b$")
    assert "claim-4521-pin" not in row.password_hash


async def test_another_projects_session_is_404(client, root_headers, project_id):
    other = (await client.post("/v1/projects", json={"name": "other"}, headers=root_headers)).json()
    mine = await create_key(client, root_headers, project_id)
    theirs = await create_key(client, root_headers, other["id"])
    created = await client.post("/v1/sessions", json=POLL_SESSION, headers=bearer(theirs["key"]))
    r = await client.get(f"/v1/sessions/{created.json()['id']}", headers=bearer(mine["key"]))
    assert (r.status_code, r.json()["code"]) == (404, "not_found")


async def test_no_credentials_is_401_with_www_authenticate(client):
    r = await client.post("/v1/sessions", json=POLL_SESSION)
    assert r.status_code == 401
    assert r.json()["code"] == "credentials_missing"
    assert r.headers["content-type"] == "application/problem+json"
    assert "www-authenticate" in r.headers


async def test_rate_limit_headers_also_come_with_errors_after_authentication(
    client, root_headers, project_id
):
    key = await create_key(
        client, root_headers, project_id, rate_limit={"limit": 10, "period_seconds": 60}
    )
    r = await client.get("/v1/sessions/sess_doesnotexist00000", headers=bearer(key["key"]))
    assert (r.status_code, r.json()["code"]) == (404, "not_found")
    assert r.headers["ratelimit-limit"] == "10"
    assert r.headers["ratelimit-remaining"] == "9"
