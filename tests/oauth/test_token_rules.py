"""The token endpoint's rules (RFC 9700 §2.1.1, §2.2.2, §4.14): codes once, ≤ 60 s, for
their client and verifier, and a replay revokes what they issued; refresh tokens rotate,
bound to their client, and a reused one revokes its family; implicit and password
grants refused; client secrets hashed, compared in constant time and throttled."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from keyguard.oauth.clients import FAILURES
from keyguard.oauth.models import OAuthApp
from oauth_helpers import REDIRECT, basic, code_for, probe, register_app

TOKEN = "/oauth/token"


async def exchange(client, app, code, verifier, **extra):
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
        **extra,
    }
    return await client.post(TOKEN, data=data, headers=basic(app.app.client_id, app.client_secret))


async def test_a_code_works_once_and_its_replay_revokes_what_it_issued(client, person, app, pkce):
    code = await code_for(person, app.app.client_id, pkce[1])
    first = await exchange(client, app, code, pkce[0])
    assert first.status_code == 200, first.text
    assert first.headers["cache-control"] == "no-store"
    tokens = first.json()
    assert (await probe(client, tokens["access_token"])).status_code == 404

    again = await exchange(client, app, code, pkce[0])
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    refused = await probe(client, tokens["access_token"])
    assert refused.status_code == 401
    assert refused.json()["code"] == "token_revoked"
    refresh = await client.post(
        TOKEN,
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        headers=basic(app.app.client_id, app.client_secret),
    )
    assert refresh.json()["error"] == "invalid_grant"


async def test_a_code_lives_sixty_seconds(client, person, app, pkce, clock):
    code = await code_for(person, app.app.client_id, pkce[1])
    clock.advance(61)
    answer = await exchange(client, app, code, pkce[0])
    assert answer.json()["error"] == "invalid_grant"


async def test_another_clients_code_is_refused_and_left_for_its_client(
    runtime, project_id, client, person, app, pkce
):
    other = await register_app(runtime, project_id, name="Other app")
    code = await code_for(person, app.app.client_id, pkce[1])
    stolen = await exchange(client, other, code, pkce[0])
    assert stolen.json()["error"] == "invalid_grant"
    assert (await exchange(client, app, code, pkce[0])).status_code == 200


@pytest.mark.parametrize("verifier", ["", "x" * 43, "short"])
async def test_pkce_missing_or_wrong_fails_and_changes_nothing(client, person, app, pkce, verifier):
    code = await code_for(person, app.app.client_id, pkce[1])
    wrong = await exchange(client, app, code, verifier)
    assert wrong.json()["error"] == "invalid_grant"
    assert (await exchange(client, app, code, pkce[0])).status_code == 200


async def test_a_different_redirect_uri_at_the_token_endpoint_fails(client, person, app, pkce):
    code = await code_for(person, app.app.client_id, pkce[1])
    answer = await exchange(client, app, code, pkce[0], redirect_uri=REDIRECT + "/other")
    assert answer.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("grant_type", ["password", "implicit", "token", "urn:x"])
async def test_implicit_and_password_grants_are_refused(client, app, grant_type):
    answer = await client.post(
        TOKEN,
        data={"grant_type": grant_type, "username": "a", "password": "b"},
        headers=basic(app.app.client_id, app.client_secret),
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "unsupported_grant_type"
    assert answer.headers["content-type"] == "application/problem+json"


async def test_refresh_tokens_rotate_and_a_reused_one_revokes_the_family(client, person, app, pkce):
    code = await code_for(person, app.app.client_id, pkce[1])
    first = (await exchange(client, app, code, pkce[0])).json()
    auth = basic(app.app.client_id, app.client_secret)

    def refresh(token):
        return client.post(
            TOKEN, data={"grant_type": "refresh_token", "refresh_token": token}, headers=auth
        )

    second = (await refresh(first["refresh_token"])).json()
    assert second["refresh_token"] != first["refresh_token"]
    assert (await probe(client, second["access_token"])).status_code == 404

    reused = await refresh(first["refresh_token"])  # the rotated one, again
    assert reused.json()["error"] == "invalid_grant"
    # The whole family is gone: the newest refresh token and its access token too.
    assert (await refresh(second["refresh_token"])).json()["error"] == "invalid_grant"
    refused = await probe(client, second["access_token"])
    assert refused.json()["code"] == "token_revoked"


async def test_a_refresh_token_is_bound_to_its_client(
    runtime, project_id, client, person, app, pkce
):
    other = await register_app(runtime, project_id, name="Other app")
    code = await code_for(person, app.app.client_id, pkce[1])
    tokens = (await exchange(client, app, code, pkce[0])).json()
    answer = await client.post(
        TOKEN,
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        headers=basic(other.app.client_id, other.client_secret),
    )
    assert answer.json()["error"] == "invalid_grant"


async def test_an_access_token_is_not_a_refresh_token_nor_the_reverse(client, person, app, pkce):
    code = await code_for(person, app.app.client_id, pkce[1])
    tokens = (await exchange(client, app, code, pkce[0])).json()
    answer = await client.post(
        TOKEN,
        data={"grant_type": "refresh_token", "refresh_token": tokens["access_token"]},
        headers=basic(app.app.client_id, app.client_secret),
    )
    assert answer.json()["error"] == "invalid_grant"
    refused = await probe(client, tokens["refresh_token"])
    assert refused.status_code == 401


async def test_client_secrets_are_stored_hashed(runtime, app):
    async with runtime.sessions() as db:
        row = (await db.execute(select(OAuthApp))).scalar_one()
    assert row.secret_hash is not None
    assert app.client_secret.encode() not in row.secret_hash
    assert app.client_secret not in repr(app)


async def test_failed_client_authentication_is_throttled(client, app):
    data = {"grant_type": "client_credentials"}
    for _ in range(FAILURES):
        wrong = await client.post(TOKEN, data=data, headers=basic(app.app.client_id, "kgcs_wrong"))
        assert wrong.status_code == 401
        assert wrong.json()["error"] == "invalid_client"
        assert wrong.headers["www-authenticate"].startswith("Basic")
    right = await client.post(TOKEN, data=data, headers=basic(app.app.client_id, app.client_secret))
    assert right.status_code == 429  # refused before the secret is compared


async def test_client_secret_post_works_and_both_methods_at_once_do_not(client, app):
    form = {
        "grant_type": "client_credentials",
        "client_id": app.app.client_id,
        "client_secret": app.client_secret,
    }
    assert (await client.post(TOKEN, data=form)).status_code == 200
    both = await client.post(TOKEN, data=form, headers=basic(app.app.client_id, app.client_secret))
    assert both.json()["error"] == "invalid_request"


async def test_a_public_client_cannot_use_client_credentials(runtime, project_id, client):
    public = await register_app(runtime, project_id, public=True)
    answer = await client.post(
        TOKEN, data={"grant_type": "client_credentials", "client_id": public.app.client_id}
    )
    assert answer.json()["error"] == "unauthorized_client"


async def test_a_repeated_parameter_is_refused(client, app):
    answer = await client.post(
        TOKEN,
        content="grant_type=client_credentials&scope=read&scope=write",
        headers={
            **basic(app.app.client_id, app.client_secret),
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert answer.json()["error"] == "invalid_request"


async def test_scopes_beyond_the_role_are_not_granted(runtime, project_id, client, person, pkce):
    from keyguard.oauth.apps import AppSpec, create_app

    limited = await create_app(
        runtime,
        project_id,
        AppSpec(
            name="Limited",
            public=False,
            redirect_uris=(REDIRECT,),
            allowed_domains=(),
            scopes=("read", "write"),
            role_scopes={"owner": ("read",)},
        ),
        actor="test",
    )
    code = await code_for(person, limited.app.client_id, pkce[1], scope="read write")
    tokens = (await exchange(client, limited, code, pkce[0])).json()
    assert tokens["scope"] == "read"


async def test_a_replayed_code_is_announced_to_the_projects_webhooks(
    runtime, client, person, pkce, project_id
):
    from sqlalchemy import select

    from keyguard.webhooks import endpoints
    from keyguard.webhooks.models import WebhookMessage

    await endpoints.create_endpoint(
        runtime,
        project_id,
        url="https://hooks.example.com/in",
        events=["*"],
        description="",
        actor="test",
    )
    app = await register_app(runtime, project_id)
    code = await code_for(person, app.app.client_id, pkce[1])
    assert (await exchange(client, app, code, pkce[0])).status_code == 200
    assert (await exchange(client, app, code, pkce[0])).status_code == 400
    async with runtime.sessions() as db:
        messages = (
            await db.execute(
                select(WebhookMessage).where(WebhookMessage.event_type.like("oauth.%"))
            )
        ).scalars()
        found = {m.event_type: m for m in messages}
    assert set(found) == {"oauth.app_created", "oauth.consent_given", "oauth.token_reused"}
    reused = json.loads(found["oauth.token_reused"].payload)
    assert reused["client_id"] == app.app.client_id
    assert reused["grant_id"].startswith("ogr_")
    assert app.client_secret not in found["oauth.app_created"].payload
