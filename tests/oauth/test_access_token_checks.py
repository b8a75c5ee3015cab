"""Access tokens at the doors (RFC 9068 §4, RFC 8725): a token is refused for a bad
signature, ``alg: none``, HS256 keyed with our public key, another issuer or audience,
another ``typ``, expiry, revocation (on every instance), a deleted app, a missing scope
or another project's resources; the same problem+json at every door."""

from __future__ import annotations

import base64
import json

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey

from keyguard.oauth import apps
from keyguard.oauth.apps import CreatedApp
from keyguard.oauth.signing import MAX_TOKEN_SECONDS, PROPAGATION
from keyguard.projects import service as projects
from keyguard.runtime import Runtime
from oauth_helpers import access_token, probe


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _parts(token: str) -> tuple[dict, dict, str]:
    head, body, sig = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return (
        json.loads(base64.urlsafe_b64decode(pad(head))),
        json.loads(base64.urlsafe_b64decode(pad(body))),
        sig,
    )


async def _signed(runtime: Runtime, header: dict, claims: dict) -> str:
    key = await runtime.oauth.keys.signing_key()
    return jwt.encode({"alg": "ES256", "kid": key.kid, **header}, claims, key.private)


@pytest.fixture
async def token(runtime, app: CreatedApp, project_id) -> str:
    return await access_token(runtime, project_id=project_id, app=app, scopes=("read",))


async def test_a_good_token_passes(client, token):
    assert (await probe(client, token)).status_code == 404


async def test_a_tampered_token_is_invalid(client, token):
    header, claims, sig = _parts(token)
    claims["scope"] = "read write admin"
    forged = f"{_b64(header)}.{_b64(claims)}.{sig}"
    refused = await probe(client, forged)
    assert refused.status_code == 401
    assert refused.json()["code"] == "invalid_token"
    assert refused.headers["www-authenticate"] == 'Bearer error="invalid_token"'


async def test_alg_none_is_invalid(client, token):
    header, claims, _ = _parts(token)
    forged = f"{_b64({**header, 'alg': 'none'})}.{_b64(claims)}."
    assert (await probe(client, forged)).json()["code"] == "invalid_token"


async def test_hs256_keyed_with_our_public_key_is_invalid(runtime, client, token):
    _, claims, _ = _parts(token)
    jwks = await runtime.oauth.keys.jwks()
    public = json.dumps(jwks["keys"][0]).encode()
    for secret in (public, public.decode().encode("utf-8")):
        forged = jwt.encode(
            {"alg": "HS256", "typ": "at+jwt"},
            claims,
            OctKey.import_key(secret),
            algorithms=["HS256"],
        )
        assert (await probe(client, forged)).json()["code"] == "invalid_token"


@pytest.mark.parametrize(
    ("change", "header"),
    [
        ({"iss": "https://evil.example"}, {}),
        ({"aud": "https://other-api.example"}, {}),
        ({"aud": ["https://testserver"]}, {}),
        ({}, {"typ": "JWT"}),
        ({"project_id": "proj_other000000000"}, {}),
        ({"scope": 7}, {}),
    ],
)
async def test_claims_that_are_not_exactly_ours_are_invalid(runtime, client, token, change, header):
    head, claims, _ = _parts(token)
    forged = await _signed(runtime, {"typ": head["typ"], **header}, {**claims, **change})
    assert (await probe(client, forged)).json()["code"] == "invalid_token"


async def test_an_expired_token_is_refused(client, token, clock, runtime):
    clock.advance(runtime.settings.oauth_access_token_seconds + 1)
    refused = await probe(client, token)
    assert refused.status_code == 401
    assert refused.json()["code"] == "token_expired"


async def test_a_revoked_token_is_refused_by_every_door(runtime, client, token, app, root_headers):
    revoked = await client.post(
        "/oauth/revoke",
        data={"token": token},
        auth=(app.app.client_id, app.client_secret),
    )
    assert revoked.status_code == 200
    assert (await probe(client, token)).json()["code"] == "token_revoked"
    verified = await client.post("/v1/keys/verify", json={"token": token}, headers=root_headers)
    assert verified.json() == {**verified.json(), "valid": False, "code": "token_revoked"}


async def test_the_verify_api_takes_a_token(client, token, root_headers, app, project_id):
    answer = (
        await client.post(
            "/v1/keys/verify",
            json={"token": token, "required_scopes": ["read"]},
            headers=root_headers,
        )
    ).json()
    assert answer["valid"] is True
    assert answer["client_id"] == app.app.client_id
    assert answer["project_id"] == project_id
    assert answer["scopes"] == ["read"]
    assert answer["subject"] is None  # client credentials
    missing = await client.post(
        "/v1/keys/verify",
        json={"token": token, "required_scopes": ["write"]},
        headers=root_headers,
    )
    assert missing.json()["code"] == "scope_missing"
    both = await client.post(
        "/v1/keys/verify", json={"token": token, "key": "aptr_x"}, headers=root_headers
    )
    assert both.status_code == 422


async def test_a_deleted_apps_tokens_stop_at_once(runtime, client, token, app, project_id):
    await apps.delete_app(runtime, project_id, app.app.id, actor="test")
    assert (await probe(client, token)).status_code == 401


async def test_another_projects_resources_are_not_found(runtime, client, admin):
    other = await projects.create_project(
        runtime, name="Other", key_prefix=None, actor="test", owner=None
    )
    token = await access_token(runtime, project_id=other.project.id)
    created = await client.post(
        "/v1/sessions", json={"delivery_mode": "poll"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert created.status_code == 201, created.text
    session_id = created.json()["id"]
    mine = await access_token(runtime, project_id=admin.project.project.id)
    seen = await client.get(
        f"/v1/sessions/{session_id}", headers={"Authorization": f"Bearer {mine}"}
    )
    assert seen.status_code == 404


async def test_a_token_is_not_a_management_credential(client, token):
    refused = await client.get("/v1/projects", headers={"Authorization": f"Bearer {token}"})
    assert (refused.status_code, refused.json()["code"]) == (403, "root_key_required")


async def test_plain_http_is_refused(runtime, token):
    import httpx

    from keyguard.app import create_asgi

    transport = httpx.ASGITransport(app=create_asgi(runtime), client=("203.0.113.7", 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        refused = await probe(c, token)
    assert refused.json()["code"] == "https_required"


async def test_rotation_publishes_first_signs_later_and_keeps_old_tokens_valid(
    runtime, client, token, clock, app, project_id
):
    old_kid = _parts(token)[0]["kid"]
    clock.advance(60)  # the first key has signed for a while
    new_kid = await runtime.oauth.keys.rotate(actor="test")
    kids = [k["kid"] for k in (await client.get("/oauth/jwks")).json()["keys"]]
    assert set(kids) == {old_kid, new_kid}
    # Published now, signing only once every instance has had time to learn it.
    fresh = await access_token(runtime, project_id=project_id, app=app)
    assert _parts(fresh)[0]["kid"] == old_kid
    clock.advance(PROPAGATION)
    fresh = await access_token(runtime, project_id=project_id, app=app)
    assert _parts(fresh)[0]["kid"] == new_kid
    assert (await probe(client, token)).status_code == 404  # the old key still checks
    # The old key leaves the JWKS once every token it may have signed has expired (the
    # longest lifetime the setting allows, whatever it is today).
    clock.advance(MAX_TOKEN_SECONDS + 1)
    await runtime.oauth.keys.reload(force=True)
    published = (await client.get("/oauth/jwks")).json()["keys"]
    assert [k["kid"] for k in published] == [new_kid]
    assert all("d" not in k for k in published)  # never the private half


async def test_an_administrator_rotates_the_signing_key(client, root_headers, token):
    rotated = await client.post("/v1/oauth/signing-keys/rotate", headers=root_headers)
    assert rotated.status_code == 200
    kids = [k["kid"] for k in (await client.get("/oauth/jwks")).json()["keys"]]
    assert rotated.json()["kid"] in kids
    assert len(kids) == 2
    by_token = await client.post(
        "/v1/oauth/signing-keys/rotate", headers={"Authorization": f"Bearer {token}"}
    )
    assert by_token.status_code == 403


async def test_the_signing_key_is_sealed_at_rest(runtime):
    from sqlalchemy import select

    from keyguard.oauth.models import OAuthSigningKey

    async with runtime.sessions() as db:
        row = (await db.execute(select(OAuthSigningKey))).scalars().first()
    assert "PRIVATE KEY" not in row.private_sealed
    assert "d" not in row.public_jwk
