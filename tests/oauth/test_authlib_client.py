"""Every flow run by a peer implementation, Authlib's OAuth 2 client, that knows only the
discovery document (RFC 8414): authorization code with PKCE through the consent page,
refresh (rotated), client credentials, revocation and introspection; and the tokens it
gets open Keyguard's protected routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from account_pages import csrf_of
from keyguard.app import create_asgi
from keyguard.runtime import Runtime
from oauth_helpers import REDIRECT, probe, register_app

DISCOVERY = "/.well-known/oauth-authorization-server"


@pytest.fixture
async def metadata(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get(DISCOVERY)
    assert response.status_code == 200
    return response.json()


def oauth_client(runtime: Runtime, **kwargs: Any) -> AsyncOAuth2Client:
    transport = httpx.ASGITransport(app=create_asgi(runtime), client=("192.0.2.50", 40000))
    return AsyncOAuth2Client(transport=transport, **kwargs)


async def consent(person: httpx.AsyncClient, url: str, decision: str = "allow") -> str:
    """The person opens ``url``, answers the consent page; the app's redirect URI."""
    page = await person.get(url)
    assert page.status_code == 200, page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "access-control-allow-origin" not in page.headers
    fields = dict(parse_qs(urlsplit(url).query))
    form = {name: values[0] for name, values in fields.items()}
    answer = await person.post(
        "/oauth/authorize", data={**form, "csrf_token": csrf_of(page.text), "decision": decision}
    )
    assert answer.status_code == 303, answer.text
    return answer.headers["location"]


@pytest.fixture
async def authlib(runtime: Runtime, project_id: str) -> AsyncIterator[AsyncOAuth2Client]:
    app = await register_app(runtime, project_id, scopes=("read", "write"))
    async with oauth_client(
        runtime,
        client_id=app.app.client_id,
        client_secret=app.client_secret,
        scope="read write",
        redirect_uri=REDIRECT,
        code_challenge_method="S256",
    ) as c:
        yield c


async def test_the_code_flow_with_pkce_then_refresh_then_revoke(
    runtime, person, metadata, authlib, project_id
):
    verifier = "v" * 64
    url, state = authlib.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=verifier
    )
    location = await consent(person, url)
    query = parse_qs(urlsplit(location).query)
    assert location.startswith(REDIRECT + "?")
    assert query["state"] == [state]
    assert query["iss"] == [metadata["issuer"]]  # RFC 9207
    token = await authlib.fetch_token(
        metadata["token_endpoint"], authorization_response=location, code_verifier=verifier
    )
    assert token["token_type"] == "Bearer"
    assert set(token["scope"].split()) == {"read", "write"}
    assert token["expires_in"] == runtime.settings.oauth_access_token_seconds

    # The access token opens the project's own routes (an unknown session: 404, not 401).
    opened = await probe(person, token["access_token"])
    assert opened.status_code == 404, opened.text
    assert opened.json()["code"] == "not_found"

    refreshed = await authlib.refresh_token(metadata["token_endpoint"])
    assert refreshed["refresh_token"] != token["refresh_token"]

    introspected = await authlib.introspect_token(
        metadata["introspection_endpoint"], token=refreshed["access_token"]
    )
    assert introspected.json()["active"] is True

    await authlib.revoke_token(metadata["revocation_endpoint"], refreshed["refresh_token"])
    after = await authlib.introspect_token(
        metadata["introspection_endpoint"], token=refreshed["access_token"]
    )
    assert after.json() == {"active": False}


async def test_client_credentials(runtime, metadata, authlib):
    token = await authlib.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
    assert "refresh_token" not in token
    assert set(token["scope"].split()) == {"read", "write"}


def test_challenge_helper_matches_ours():
    from keyguard.oauth.grants import s256

    assert s256("v" * 64) == create_s256_code_challenge("v" * 64)
