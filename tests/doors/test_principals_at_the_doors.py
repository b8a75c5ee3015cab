"""A JWT that is not a token we issued is refused as ``invalid_token`` by every door (the
management API included); a session cookie is a credential of the management API only,
never of a project's own API or the verify API."""

from __future__ import annotations

import base64
import json

from helpers import POLL_SESSION, bearer, counts, create_key
from keyguard.wire import SESSION_COOKIE


def _jwt() -> str:
    def part(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'ES256', 'typ': 'at+jwt'})}.{part({'sub': 'u1', 'scope': 'x'})}.c2ln"


async def test_a_jwt_is_refused_by_protected_and_management_routes(client, runtime, project_id):
    before = await counts(runtime)
    for method, path, code, challenge in (
        ("GET", "/v1/sessions/sess_x", "invalid_token", 'Bearer error="invalid_token"'),
        ("POST", "/v1/sessions", "invalid_token", 'Bearer error="invalid_token"'),
        (
            "POST",
            f"/v1/projects/{project_id}/keys",
            "invalid_token",
            'Bearer error="invalid_token"',
        ),
    ):
        r = await client.request(method, path, headers=bearer(_jwt()), json=POLL_SESSION)
        assert r.status_code == 401, (path, r.text)
        assert r.json()["code"] == code
        assert r.headers["www-authenticate"] == challenge
        assert r.headers["content-type"] == "application/problem+json"
    assert await counts(runtime) == before


async def test_a_session_cookie_is_no_credential_of_a_projects_own_api(client, runtime, project_id):
    before = await counts(runtime)
    cookie = {"Cookie": f"{SESSION_COOKIE}=forged-or-not"}
    for method, path in (("GET", "/v1/sessions/sess_x"), ("POST", "/v1/sessions")):
        r = await client.request(method, path, headers=cookie, json=POLL_SESSION)
        assert r.status_code == 401, r.text
        assert r.json()["code"] == "credentials_missing"
    assert await counts(runtime) == before


async def test_a_key_beside_a_cookie_is_used(client, root_headers, project_id):
    key = await create_key(client, root_headers, project_id)
    headers = {**bearer(key["key"]), "Cookie": f"{SESSION_COOKIE}=whatever"}
    r = await client.post("/v1/sessions", headers=headers, json=POLL_SESSION)
    assert r.status_code == 201, r.text


async def test_the_verify_api_answers_the_same(client, root_headers):
    async def verify(headers):
        r = await client.post("/v1/keys/verify", json={"headers": headers}, headers=root_headers)
        assert r.status_code == 200, r.text
        return r.json()

    assert (await verify({"Authorization": f"Bearer {_jwt()}"}))["code"] == "invalid_token"
    cookie_only = await verify({"Cookie": f"{SESSION_COOKIE}=x"})
    assert cookie_only == {**cookie_only, "valid": False, "code": "credentials_missing"}


async def test_a_forged_session_cookie_on_the_management_api_is_an_ended_session(
    client, runtime, project_id
):
    before = await counts(runtime)
    cookie = {"Cookie": f"{SESSION_COOKIE}=forged-or-not"}
    r = await client.get(f"/v1/projects/{project_id}/keys", headers=cookie)
    assert r.status_code == 401
    assert r.json()["code"] == "session_expired"
    assert await counts(runtime) == before
