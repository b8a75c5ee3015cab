"""Seed 002's authorization code flow in a real browser against a real `keyguard serve`:
a partner app (public, PKCE S256, a loopback redirect URI on a port of its choosing)
sends the person to Keyguard; they sign in, see the consent page naming the app, its
project and the scopes, allow it, and land back on the app with a code, their state and
the issuer; the app's token then reads the project's keys as that person, until they take
its access back under Account > Apps. Every page photographed at both widths."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from keyguard_browser import KeyguardServer, Visit
from playwright.sync_api import expect
from upstreams import loopback

pytestmark = pytest.mark.e2e

PAGE = b"<!doctype html><html lang=en><title>Partner</title><h1>Back at the partner app</h1>"


class _PartnerApp(BaseHTTPRequestHandler):
    """The app's own loopback server, where the browser lands after the consent."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def partner() -> Iterator[str]:
    with loopback(_PartnerApp) as url:
        yield f"{url}/callback"


def test_sign_in_consent_and_back_to_the_app_with_a_code(
    keyguard: KeyguardServer, visit: Visit, partner: str
) -> None:
    verify = ssl.create_default_context(cafile=str(keyguard.running.ca))
    root = {"Authorization": f"Bearer {keyguard.root_key}"}
    with keyguard.running.client() as api:
        made = api.post(
            f"/v1/projects/{keyguard.project_id}/oauth-apps",
            json={
                "name": "Partner Banking",
                "public": True,
                "redirect_uris": ["http://127.0.0.1/callback"],  # any port on loopback
                "scopes": ["keyguard:read", "accounts:read"],
            },
            headers=root,
        )
        assert made.status_code == 201, made.text
        client_id = made.json()["client_id"]
        metadata = api.get("/.well-known/oauth-authorization-server").json()

    app = OAuth2Client(
        client_id=client_id,
        redirect_uri=partner,
        scope="keyguard:read accounts:read",
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
        verify=verify,
    )
    verifier = "partner-app-verifier-" + "x" * 40
    url, state = app.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=verifier
    )

    # Not signed in: Keyguard asks first, then comes back to the same request.
    page = visit.page
    visit.goto(url)
    expect(page.get_by_role("heading", name="Sign in", exact=True)).to_be_visible()
    visit.shot("sign-in-first")
    page.get_by_label("Email").fill(keyguard.email)
    page.get_by_label("Password").fill(keyguard.password)
    visit.submit(page.get_by_role("button", name="Sign in", exact=True))

    expect(page.get_by_role("heading", name="Allow Partner Banking?")).to_be_visible()
    expect(page.get_by_text("keyguard:read")).to_be_visible()
    expect(page.get_by_text("accounts:read")).to_be_visible()
    expect(page.get_by_text("127.0.0.1")).to_be_visible()
    visit.shot("consent")
    allow = page.get_by_role("button", name="Allow")
    allow.focus()  # keyboard: the answer is a button like any other
    visit.press("Enter")

    expect(page.get_by_role("heading", name="Back at the partner app")).to_be_visible()
    visit.shot("back-at-the-app")
    landed = urlsplit(page.url)
    assert f"{landed.scheme}://{landed.netloc}{landed.path}" == partner
    query = {k: v[0] for k, v in parse_qs(landed.query).items()}
    assert query["state"] == state
    assert query["iss"] == metadata["issuer"] == keyguard.url

    token = app.fetch_token(
        metadata["token_endpoint"], authorization_response=page.url, code_verifier=verifier
    )
    assert set(token["scope"].split()) == {"keyguard:read", "accounts:read"}
    assert token["refresh_token"]
    with httpx.Client(base_url=keyguard.url, verify=verify, timeout=10) as c:
        bearer = {"Authorization": f"Bearer {token['access_token']}"}
        keys = c.get(f"/v1/projects/{keyguard.project_id}/keys", headers=bearer)
        assert keys.status_code == 200, keys.text

        # Account > Apps: the person sees the app and takes its access back.
        visit.goto("/account/security")
        visit.shot("security")
        visit.submit(page.get_by_role("link", name="Apps", exact=True))
        expect(page.get_by_role("heading", name="Apps you allowed")).to_be_visible()
        expect(page.get_by_role("cell", name="Partner Banking", exact=True)).to_be_visible()
        visit.shot("connected-apps")
        visit.submit(page.get_by_role("button", name="Revoke the access of Partner Banking"))
        expect(page.get_by_role("status")).to_contain_text("Access revoked")
        visit.shot("access-revoked")
        refused = c.get(f"/v1/projects/{keyguard.project_id}/keys", headers=bearer)
        assert (refused.status_code, refused.json()["code"]) == (401, "token_revoked")
    app.close()
