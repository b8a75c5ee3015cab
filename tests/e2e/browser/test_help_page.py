"""Help > Security in a real browser, signed out as a help centre is read: the headings,
the table of contents, a copy button that copies the code as shown, and the French
article for a French browser. Screenshots at laptop and phone widths (artefacts/)."""

from __future__ import annotations

import re

import pytest
from keyguard_browser import KeyguardServer, OpenPage, Visit
from playwright.sync_api import expect
from test_account_pages import sign_in

pytestmark = pytest.mark.e2e


def test_the_article_reads_and_copies_signed_out(
    open_page: OpenPage, keyguard: KeyguardServer
) -> None:
    visit = open_page(permissions=["clipboard-read", "clipboard-write"])
    page = visit.page
    visit.goto("/login")
    visit.shot("sign-in-offers-help")
    visit.submit(page.get_by_role("link", name="Help", exact=True))
    expect(page).to_have_url(re.compile(r"/help/security$"))
    expect(page.get_by_role("heading", name="Security", exact=True, level=1)).to_be_visible()
    for title in (
        "API Key Security",
        "TOTP for API Keys",
        "Client Certificates (mTLS)",
        "Request Signing",
        "Session Passwords",
        "SDK Origin Validation",
        "Webhook Signature Verification",
        "Account Security",
    ):
        expect(page.get_by_role("heading", name=title, exact=True, level=2)).to_be_visible()
    # This server's address and prefix in the examples.
    totp = page.locator("#snippet-totp")
    expect(totp).to_contain_text(f"curl -X POST {keyguard.url}/v1/sessions")
    expect(totp).to_contain_text('-H "X-Keyguard-TOTP: 123456"')
    visit.shot("help-security")

    # The table of contents leads to its section.
    page.get_by_role("navigation", name="On this page").get_by_role(
        "link", name="Webhook Signature Verification"
    ).click()
    expect(page).to_have_url(re.compile(r"#webhooks$"))
    expect(page.get_by_role("heading", name="Webhook Signature Verification")).to_be_in_viewport()

    # A copy button copies its block exactly, and says so.
    button = page.locator('button.copy[data-copy="webhook-python"]')
    expect(button).to_have_accessible_name("Copy")
    button.click()
    expect(button).to_have_text("Copied")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == page.locator("#webhook-python").inner_text().strip()
    assert copied.startswith("import base64")
    assert "hmac.compare_digest" in copied
    expect(button).to_have_text("Copy", timeout=5000)
    visit.shot("help-security-webhooks")


def test_a_french_browser_gets_the_french_article(open_page: OpenPage) -> None:
    visit = open_page(locale="fr-CA")
    page = visit.page
    visit.goto("/help/security")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.get_by_role("heading", name="Sécurité", exact=True, level=1)).to_be_visible()
    expect(page.get_by_role("heading", name="Sur cette page", exact=True)).to_be_visible()
    expect(
        page.get_by_role("heading", name="Vérification de la signature des webhooks", level=2)
    ).to_be_visible()
    expect(page.get_by_role("link", name="Aide", exact=True)).to_have_attribute(
        "aria-current", "page"
    )
    expect(page.get_by_role("button", name="Copier").first).to_be_visible()
    visit.shot("help-security-french")


def test_help_is_in_the_navigation_when_signed_in(visit: Visit, keyguard: KeyguardServer) -> None:
    sign_in(visit, keyguard.email, keyguard.password)
    nav = visit.page.get_by_role("navigation", name="Account")
    expect(nav.get_by_role("link", name="Projects")).to_be_visible()
    visit.shot("signed-in")
    visit.submit(nav.get_by_role("link", name="Help", exact=True))
    expect(visit.page.get_by_role("heading", name="Security", exact=True, level=1)).to_be_visible()
    expect(nav.get_by_role("link", name="Help", exact=True)).to_have_attribute(
        "aria-current", "page"
    )
    visit.shot("help-signed-in")
