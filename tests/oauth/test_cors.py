"""CORS (CONTRACT §8): the token endpoint answers only origins its client's app allows (the
keys' wildcard rule; an empty list allows all), discovery, the JWKS and preflights an
origin some app allows, and the authorization endpoint sends no CORS headers at all."""

from __future__ import annotations

import pytest

from oauth_helpers import basic, register_app


@pytest.fixture
async def spa(runtime, project_id):
    return await register_app(runtime, project_id, allowed_domains=("*.example.com",))


async def token_from(client, app, origin):
    return await client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={**basic(app.app.client_id, app.client_secret), "Origin": origin},
    )


async def test_an_allowed_origin_gets_its_token_with_cors(client, spa):
    answer = await token_from(client, spa, "https://app.eu.example.com")
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == "https://app.eu.example.com"
    assert "origin" in answer.headers["vary"].lower()


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "https://example.com", "https://example.com.evil.io", "null"]
)
async def test_another_origin_is_refused_without_cors(client, spa, origin):
    answer = await token_from(client, spa, origin)
    assert answer.status_code == 403
    assert answer.json()["code"] == "origin_not_allowed"
    assert "access-control-allow-origin" not in answer.headers


async def test_an_app_without_a_list_allows_every_origin(runtime, project_id, client):
    open_app = await register_app(runtime, project_id)
    answer = await token_from(client, open_app, "https://anywhere.example")
    assert answer.headers["access-control-allow-origin"] == "https://anywhere.example"


@pytest.mark.parametrize("path", ["/.well-known/oauth-authorization-server", "/oauth/jwks"])
async def test_discovery_and_jwks_answer_origins_some_app_allows(client, spa, path):
    allowed = await client.get(path, headers={"Origin": "https://a.example.com"})
    assert allowed.headers["access-control-allow-origin"] == "https://a.example.com"
    refused = await client.get(path, headers={"Origin": "https://evil.example"})
    assert refused.status_code == 200  # public documents; the browser withholds them
    assert "access-control-allow-origin" not in refused.headers


async def test_preflight(client, spa):
    headers = {"Origin": "https://a.example.com", "Access-Control-Request-Method": "POST"}
    allowed = await client.options("/oauth/token", headers=headers)
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == "https://a.example.com"
    assert "Authorization" in allowed.headers["access-control-allow-headers"]
    refused = await client.options(
        "/oauth/token", headers={**headers, "Origin": "https://evil.example"}
    )
    assert "access-control-allow-origin" not in refused.headers


async def test_the_authorization_endpoint_sends_no_cors_headers(client, spa):
    answer = await client.get(
        "/oauth/authorize",
        params={"client_id": spa.app.client_id},
        headers={"Origin": "https://a.example.com"},
    )
    assert not any(name.startswith("access-control-") for name in answer.headers)
    options = await client.options("/oauth/authorize", headers={"Origin": "https://a.example.com"})
    assert not any(name.startswith("access-control-") for name in options.headers)


async def test_a_token_used_from_a_browser_follows_the_apps_domains(runtime, client, spa):
    from oauth_helpers import access_token, probe

    token = await access_token(runtime, project_id=spa.app.project_id, app=spa)
    assert (await probe(client, token, Origin="https://a.example.com")).status_code == 404
    refused = await probe(client, token, Origin="https://evil.example")
    assert refused.status_code == 403
    assert refused.json()["code"] == "origin_not_allowed"
    # A server (no Origin) is not a browser: the list is about browsers.
    assert (await probe(client, token)).status_code == 404
