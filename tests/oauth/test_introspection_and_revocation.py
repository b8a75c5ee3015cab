"""Introspection (RFC 7662) needs a confidential client of the token's project and answers
exactly ``{"active": false}`` for anything else; revocation (RFC 7009) answers 200 for
any token, reaches only the caller's own, and a revoked refresh token takes its access
tokens with it."""

from __future__ import annotations

import httpx
import pytest

from keyguard.app import create_asgi
from keyguard.runtime import Runtime
from oauth_helpers import REDIRECT, access_token, basic, code_for, probe, register_app

INTROSPECT, REVOKE = "/oauth/introspect", "/oauth/revoke"


@pytest.fixture
async def tokens(client, person, app, pkce) -> dict:
    code = await code_for(person, app.app.client_id, pkce[1])
    answer = await client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": pkce[0],
        },
        headers=basic(app.app.client_id, app.client_secret),
    )
    return answer.json()


async def test_an_active_access_token_is_described(client, app, tokens, admin):
    answer = await client.post(
        INTROSPECT,
        data={"token": tokens["access_token"]},
        headers=basic(app.app.client_id, app.client_secret),
    )
    body = answer.json()
    assert answer.headers["cache-control"] == "no-store"
    assert body["active"] is True
    assert body["client_id"] == app.app.client_id
    assert body["sub"] == admin.account.id
    assert body["scope"] == "read"
    assert body["token_type"] == "Bearer"


async def test_a_refresh_token_is_described_until_it_is_used(client, app, tokens):
    auth = basic(app.app.client_id, app.client_secret)
    active = await client.post(INTROSPECT, data={"token": tokens["refresh_token"]}, headers=auth)
    assert active.json()["active"] is True
    assert active.json()["token_type"] == "refresh_token"
    await client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        headers=auth,
    )
    used = await client.post(INTROSPECT, data={"token": tokens["refresh_token"]}, headers=auth)
    assert used.json() == {"active": False}


@pytest.mark.parametrize(
    "token", ["garbage", "eyJhbGciOiJub25lIn0.e30.", "kgrt_unknown", "x" * 5000]
)
async def test_anything_not_active_is_exactly_inactive(client, app, token):
    answer = await client.post(
        INTROSPECT, data={"token": token}, headers=basic(app.app.client_id, app.client_secret)
    )
    assert answer.status_code == 200
    assert answer.json() == {"active": False}


async def test_introspection_needs_client_authentication(runtime, project_id, client, tokens):
    anonymous = await client.post(INTROSPECT, data={"token": tokens["access_token"]})
    assert anonymous.status_code == 401
    assert anonymous.json()["error"] == "invalid_client"
    public = await register_app(runtime, project_id, public=True)
    as_public = await client.post(
        INTROSPECT, data={"token": tokens["access_token"], "client_id": public.app.client_id}
    )
    assert as_public.status_code == 401


async def test_a_client_of_another_project_learns_nothing(runtime, client, tokens, admin):
    from keyguard.projects import service as projects

    other = await projects.create_project(
        runtime, name="Other", key_prefix=None, actor="test", owner=None
    )
    stranger = await register_app(runtime, other.project.id)
    answer = await client.post(
        INTROSPECT,
        data={"token": tokens["access_token"]},
        headers=basic(stranger.app.client_id, stranger.client_secret),
    )
    assert answer.json() == {"active": False}


async def test_revoking_an_unknown_token_answers_200(client, app):
    answer = await client.post(
        REVOKE,
        data={"token": "nothing-like-ours"},
        headers=basic(app.app.client_id, app.client_secret),
    )
    assert answer.status_code == 200
    assert answer.content == b""


async def test_revoking_another_clients_token_does_nothing(
    runtime, project_id, client, app, tokens
):
    other = await register_app(runtime, project_id, name="Other")
    auth = basic(other.app.client_id, other.client_secret)
    for token in (tokens["access_token"], tokens["refresh_token"]):
        assert (await client.post(REVOKE, data={"token": token}, headers=auth)).status_code == 200
    assert (await probe(client, tokens["access_token"])).status_code == 404


async def test_revoking_a_refresh_token_kills_its_access_tokens(client, app, tokens):
    auth = basic(app.app.client_id, app.client_secret)
    answer = await client.post(
        REVOKE,
        data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
        headers=auth,
    )
    assert answer.status_code == 200
    assert (await probe(client, tokens["access_token"])).json()["code"] == "token_revoked"
    refresh = await client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        headers=auth,
    )
    assert refresh.json()["error"] == "invalid_grant"


async def test_a_public_client_revokes_its_own_token_with_its_id(
    runtime, project_id, client, admin
):
    public = await register_app(runtime, project_id, public=True)
    token = await access_token(runtime, project_id=project_id, app=public, subject=admin.account.id)
    answer = await client.post(REVOKE, data={"token": token, "client_id": public.app.client_id})
    assert answer.status_code == 200
    assert (await probe(client, token)).json()["code"] == "token_revoked"


async def test_a_revocation_survives_a_restart_without_redis(
    settings, clock, runtime, app, project_id
):
    """Without Redis the shared state lives in the process: a revoked token must still be
    refused by the next process (the database keeps the revocation)."""
    first = await Runtime.start(settings, clock=clock)
    try:
        token = await access_token(first, project_id=project_id, app=app)
        transport = httpx.ASGITransport(app=create_asgi(first), client=("198.51.100.1", 1))
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c:
            revoked = await c.post(
                "/oauth/revoke",
                data={"token": token},
                headers=basic(app.app.client_id, app.client_secret),
            )
            assert revoked.status_code == 200
    finally:
        await first.close()
    second = await Runtime.start(settings, clock=clock)  # a restart, or a separate gateway
    try:
        transport = httpx.ASGITransport(app=create_asgi(second), client=("198.51.100.1", 1))
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c:
            refused = await probe(c, token)
            assert (refused.status_code, refused.json()["code"]) == (401, "token_revoked")
            introspected = await c.post(
                "/oauth/introspect",
                data={"token": token},
                headers=basic(app.app.client_id, app.client_secret),
            )
            assert introspected.json() == {"active": False}
    finally:
        await second.close()
