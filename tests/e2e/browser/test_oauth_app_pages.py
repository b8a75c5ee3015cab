"""The OAuth apps room in a real browser against a real `keyguard serve`: open the
project's OAuth apps, see the empty state, have a refused redirect URI explained next to
its field, register a confidential app and read its client secret off the page (then
the token endpoint found through discovery issues a token for it), change its name,
rotate the secret (the old one refused at once, the new one accepted), delete the app
(its client refused), and register a public app (no secret). Every page photographed at
both widths."""

from __future__ import annotations

import re

import pytest
from keyguard_browser import KeyguardServer, Visit
from playwright.sync_api import expect
from test_account_pages import sign_in

pytestmark = pytest.mark.e2e

CALLBACK = "https://partner.example.com/oauth/callback"


def token_status(keyguard: KeyguardServer, client_id: str, secret: str) -> int:
    """Client credentials at the token endpoint that the discovery document names."""
    with keyguard.running.client() as client:
        metadata = client.get("/.well-known/oauth-authorization-server").json()
        answer = client.post(
            metadata["token_endpoint"],
            data={"grant_type": "client_credentials", "scope": "keys:read"},
            auth=(client_id, secret),
        )
    if answer.status_code == 200:
        assert answer.json()["token_type"].lower() == "bearer"
        assert answer.json()["access_token"]
    return answer.status_code


def test_register_an_app_read_its_secret_rotate_it_and_delete_it(
    keyguard: KeyguardServer, visit: Visit
) -> None:
    page = visit.page
    sign_in(visit, keyguard.email, keyguard.password)
    visit.shot("signed-in")
    visit.submit(page.get_by_role("link", name="Projects"))
    visit.shot("projects")
    visit.submit(page.get_by_role("link", name=re.compile("API keys of")))
    visit.shot("api-keys")

    # The project's OAuth apps room, from the project's navigation.
    visit.submit(
        page.get_by_role("navigation", name="Settings").get_by_role("link", name="OAuth apps")
    )
    expect(page.get_by_role("heading", name="OAuth apps", exact=True)).to_be_visible()
    expect(page.get_by_text("No OAuth apps yet.")).to_be_visible()
    visit.shot("oauth-apps-empty")

    # Plain http away from a loopback address: refused next to the field, nothing made.
    page.get_by_label("Name", exact=True).fill("Partner portal")
    page.get_by_label("Redirect URIs").fill("http://partner.example.com/cb")
    page.get_by_label("Scopes").fill("keys:read usage:read")
    visit.submit(page.get_by_role("button", name="Register app"))
    expect(page.locator("#e-redirect_uris")).to_contain_text("cannot be a redirect URI")
    expect(page.get_by_label("Name", exact=True)).to_have_value("Partner portal")
    visit.shot("oauth-apps-refused-uri")

    # Register it for real: the client id and the secret, shown once.
    page.get_by_label("Redirect URIs").fill(f"{CALLBACK}\nhttp://127.0.0.1/callback")
    page.get_by_label("Allowed domains").fill("*.partner.example.com\npartner.example.com")
    visit.submit(page.get_by_role("button", name="Register app"))
    expect(page.get_by_role("alert")).to_contain_text("shown only once")
    client_id = page.locator("#client-id").inner_text().strip()
    secret = page.locator("#client-secret").inner_text().strip()
    assert client_id.startswith("client_")
    assert secret.startswith("kgcs_")
    expect(page.get_by_role("button", name="Copy")).to_have_count(2)
    visit.shot("app-registered")
    assert token_status(keyguard, client_id, secret) == 200

    # Its page: the settings, never the secret. A new name, saved.
    visit.submit(page.get_by_role("link", name="I have copied it: open the app's settings"))
    expect(page.get_by_role("heading", name="Partner portal")).to_be_visible()
    assert secret not in page.content()
    visit.shot("app")
    page.get_by_label("Name", exact=True).fill("Partner portal (staging)")
    visit.submit(page.get_by_role("button", name="Save"))
    expect(page.get_by_role("status")).to_contain_text("Saved.")
    visit.shot("app-saved")

    # Rotate with no grace period: the old secret stops at once, the new one works.
    visit.submit(page.get_by_role("link", name="Rotate the client secret"))
    visit.shot("rotate-confirm")
    page.get_by_label("Grace period").select_option("0")
    visit.submit(page.get_by_role("button", name="Rotate secret"))
    expect(page.get_by_role("alert")).to_contain_text("shown only once")
    rotated = page.locator("#client-secret").inner_text().strip()
    assert rotated != secret
    visit.shot("secret-rotated")
    assert token_status(keyguard, client_id, secret) == 401
    assert token_status(keyguard, client_id, rotated) == 200

    # The list, then delete: its tokens revoked, its client refused.
    visit.submit(page.get_by_role("link", name="I have copied it: open the app's settings"))
    visit.shot("app-after-rotation")
    visit.submit(page.get_by_role("link", name="OAuth apps", exact=True).first)
    table = page.locator("table.oauth-apps")
    expect(table).to_contain_text("Partner portal (staging)")
    expect(table).to_contain_text(client_id)
    expect(table).to_contain_text("Confidential")
    assert rotated not in page.content()
    visit.shot("oauth-apps-one")
    visit.submit(table.get_by_role("link", name="Partner portal (staging)"))
    visit.shot("app-before-delete")
    visit.submit(page.get_by_role("link", name="Delete app"))
    expect(page.get_by_text("is revoked at once")).to_be_visible()
    visit.shot("delete-confirm")
    visit.submit(page.get_by_role("button", name="Delete app"))
    expect(page.get_by_role("status")).to_contain_text("App deleted")
    visit.shot("deleted")
    assert token_status(keyguard, client_id, rotated) == 401

    # A public app: a client id, no secret.
    page.get_by_label("Name", exact=True).fill("Mobile app")
    page.get_by_label("Redirect URIs").fill("com.example.mobile:/oauth")
    page.get_by_label("Public app: no client secret").check()
    visit.submit(page.get_by_role("button", name="Register app"))
    expect(page.get_by_text("A public app has no client secret")).to_be_visible()
    expect(page.locator("#client-secret")).to_have_count(0)
    visit.shot("public-app-registered")
    visit.submit(page.get_by_role("link", name="Open the app's settings"))
    expect(page.get_by_role("link", name="Rotate the client secret")).to_have_count(0)
    visit.shot("public-app")
