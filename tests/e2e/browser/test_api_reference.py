"""The API reference at /v1/docs in a real browser: Swagger UI renders the operations with
every file from Keyguard itself (no request leaves the origin) and no Content-Security-Policy
violation (the ``visit`` fixture fails the test on any console error, which is where
Chromium reports a refused inline script or style)."""

from __future__ import annotations

import re

import pytest
from keyguard_browser import KeyguardServer, Visit
from playwright.sync_api import Request, expect

pytestmark = pytest.mark.e2e


def test_the_api_reference_renders_from_keyguard_alone(
    keyguard: KeyguardServer, visit: Visit
) -> None:
    page = visit.page
    requested: list[str] = []

    def note(request: Request) -> None:
        requested.append(request.url)

    page.on("request", note)
    response = visit.goto("/v1/docs")
    assert response.status == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]

    expect(page.get_by_role("heading", name=re.compile(r"^Keyguard\b"))).to_be_visible()
    operations = page.locator(".opblock")
    verify = operations.filter(has_text="/v1/keys/verify").first
    expect(verify).to_be_visible()
    assert operations.count() > 20
    visit.shot("api-reference")

    # An operation opens with its parameters and "Try it out".
    verify.locator(".opblock-summary-control").click()
    expect(verify.get_by_role("button", name="Try it out")).to_be_visible()
    visit.shot("api-reference-verify")

    page.wait_for_load_state("networkidle")
    assert requested, "the browser requested nothing"
    elsewhere = [url for url in requested if not url.startswith(f"{keyguard.url}/")]
    assert not elsewhere, f"requests that left Keyguard: {elsewhere}"
    for path in ("/v1/docs/assets/swagger-ui-bundle.js", "/v1/openapi.json"):
        assert f"{keyguard.url}{path}" in requested, path
