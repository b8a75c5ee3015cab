"""Real OAuth apps and access tokens for tests, made through the services (the same
issuer, signing key and records as the token endpoint)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterable
from urllib.parse import parse_qs, quote, urlsplit

import httpx

from account_pages import csrf_of
from keyguard.clock import utc_from_ts
from keyguard.oauth import apps
from keyguard.oauth.apps import AppSpec, CreatedApp
from keyguard.oauth.clients import load_client
from keyguard.oauth.grants import GRANTS, new_grant
from keyguard.oauth.server import issue
from keyguard.runtime import Runtime

REDIRECT = "https://app.example.com/callback"


async def register_app(
    runtime: Runtime,
    project_id: str,
    *,
    scopes: Iterable[str] = ("read", "write"),
    public: bool = False,
    redirect_uris: Iterable[str] = (REDIRECT,),
    allowed_domains: Iterable[str] = (),
    name: str = "Partner app",
) -> CreatedApp:
    spec = AppSpec(
        name=name,
        public=public,
        redirect_uris=tuple(redirect_uris),
        allowed_domains=tuple(allowed_domains),
        scopes=tuple(scopes),
    )
    return await apps.create_app(runtime, project_id, spec, actor="test")


async def access_token(
    runtime: Runtime,
    *,
    project_id: str,
    scopes: Iterable[str] = ("read",),
    subject: str | None = None,
    app: CreatedApp | None = None,
) -> str:
    """A real access token of an app of ``project_id`` (a new confidential app unless
    ``app`` is given): for ``subject`` (an account id), else a client-credentials token."""
    wanted = tuple(scopes)
    if app is None:
        app = await register_app(runtime, project_id, scopes=wanted)
    client = await load_client(runtime, app.app.client_id)
    assert client is not None
    if subject is None:
        grant = GRANTS["client_credentials"]
        issued = await grant.exchange(runtime, client, {"scope": " ".join(wanted)})
        return issued.access_token
    now = utc_from_ts(runtime.clock.now())
    async with runtime.transaction() as db:
        grant = await new_grant(db, client, subject, frozenset(wanted), now)
        response = await issue(
            runtime, db, grant, client.client_id, frozenset(wanted), now=now, with_refresh=False
        )
    return response.access_token


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_query(client_id: str, challenge: str, **overrides: str | None) -> dict[str, str]:
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "scope": "read",
        "state": "state-123",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **overrides,
    }
    return {k: v for k, v in params.items() if v is not None}


async def consent(
    person: httpx.AsyncClient, params: dict[str, str], decision: str = "allow"
) -> httpx.Response:
    """A signed-in person opens the authorization URL and answers the consent page."""
    page = await person.get("/oauth/authorize", params=params)
    assert page.status_code == 200, page.text
    return await person.post(
        "/oauth/authorize",
        data={**params, "csrf_token": csrf_of(page.text), "decision": decision},
    )


async def code_for(person: httpx.AsyncClient, client_id: str, challenge: str, **kw: str) -> str:
    answer = await consent(person, authorize_query(client_id, challenge, **kw))
    assert answer.status_code == 303, answer.text
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    return query["code"][0]


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


async def probe(client: httpx.AsyncClient, token: str, **headers: str) -> httpx.Response:
    """A protected route of the project's own API with ``token``: an unknown upload
    session, so an accepted token gets 404 ``not_found`` and a refused one its 401/403."""
    return await client.get(
        "/v1/sessions/sess_0000000000000000",
        headers={"Authorization": f"Bearer {token}", **headers},
    )
