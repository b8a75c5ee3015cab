"""Seed 000's steps, word for word, in a real browser against a real `keyguard serve`:
"Open your project and go to Settings > API Keys", create a key and see it once, "Click
the key you want to restrict", "Under IP Allowlist, add your server IP addresses",
"Click Save" (then a request from another address gets 403), Allowed Domains, "Open your API key
settings and click Enable TOTP", "Scan the QR code", rotate with both keys working,
revoke (refused on the next request). Every page photographed at both widths."""

from __future__ import annotations

import json
import re
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest
from cryptography.hazmat.primitives import serialization
from keyguard_browser import KeyguardServer, Visit
from playwright.sync_api import expect
from test_account_pages import sign_in

from helpers import self_signed

pytestmark = pytest.mark.e2e

BODY = {"delivery_mode": "poll"}


def poll(keyguard: KeyguardServer, key: str, **headers: str) -> tuple[int, str | None]:
    """The seed's curl: a request to Keyguard's own API with the key (from 127.0.0.1)."""
    with keyguard.running.client() as client:
        r = client.post(
            "/v1/sessions", json=BODY, headers={"Authorization": f"Bearer {key}", **headers}
        )
    return r.status_code, (r.json().get("code") if r.status_code >= 400 else None)


def open_api_keys(visit: Visit) -> None:
    """ "Open your project and go to Settings > API Keys"."""
    page = visit.page
    visit.submit(page.get_by_role("link", name="Projects"))
    visit.shot("projects")
    visit.submit(page.get_by_role("link", name=re.compile("API keys of")))
    expect(page.get_by_role("heading", name="API Keys", exact=True)).to_be_visible()
    expect(page.get_by_role("navigation", name="Settings")).to_be_visible()


def create_key(visit: Visit, name: str) -> str:
    page = visit.page
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Scopes").fill("sessions:write")
    visit.submit(page.get_by_role("button", name="Create key"))
    expect(page.get_by_role("alert")).to_contain_text("shown only once")
    key = page.locator("#new-key").inner_text().strip()
    visit.shot(f"created-{name}")
    return key


def test_seed_steps_ip_allowlist_totp_rotation_and_revocation(
    keyguard: KeyguardServer, visit: Visit
) -> None:
    page = visit.page
    sign_in(visit, keyguard.email, keyguard.password)
    visit.shot("signed-in")
    open_api_keys(visit)
    visit.shot("api-keys-empty")
    key = create_key(visit, "Backend")
    assert poll(keyguard, key) == (201, None)

    # "Click the key you want to restrict" (from the list, where the secret is not shown).
    visit.submit(page.get_by_role("link", name="I have copied it: open the key's settings"))
    visit.shot("key")
    visit.submit(page.get_by_role("link", name="API Keys", exact=True).first)
    visit.shot("api-keys-one")
    assert key not in page.content()
    visit.submit(page.get_by_role("link", name="Backend"))
    visit.shot("key-to-restrict")

    # "Under IP Allowlist, add your server IP addresses" -- first a typo, then another
    # network than ours, then ours. "Click Save".
    allowlist = page.get_by_label("Allowed addresses")
    allowlist.fill("198.51.100.0/24\n10.0.0.0/33")
    # Validated as typed (the server checks again on Save).
    expect(page.locator("#live-ip_allowlist")).to_have_text(re.compile("^Line 2: .10.0.0.0/33"))
    expect(allowlist).to_have_attribute("aria-invalid", "true")
    visit.shot("ip-allowlist-as-typed")
    visit.submit(page.get_by_role("button", name="Save"))
    expect(page.get_by_text(re.compile("^Line 2:"))).to_be_visible()
    visit.shot("ip-allowlist-typo")
    page.get_by_label("Allowed addresses").fill("198.51.100.0/24\n2001:db8::/32\n::ffff:10.0.0.1")
    expect(page.locator("#live-ip_allowlist")).to_have_text("")  # v4, v6, mapped: all fine
    visit.submit(page.get_by_role("button", name="Save"))
    expect(page.get_by_role("status")).to_contain_text("Saved")
    visit.shot("ip-allowlist-saved")
    assert poll(keyguard, key) == (403, "ip_not_allowed")  # from 127.0.0.1
    page.get_by_label("Allowed addresses").fill("127.0.0.1\n::1")
    visit.submit(page.get_by_role("button", name="Save"))
    expect(page.get_by_role("status")).to_contain_text("Saved")
    visit.shot("ip-allowlist-ours")
    assert poll(keyguard, key) == (201, None)

    # Allowed domains, with the wildcard rule: any depth below, never the apex itself.
    page.get_by_role("textbox", name="Allowed domains").fill("*.example.com")
    visit.submit(page.get_by_role("button", name="Save"))
    expect(page.get_by_role("status")).to_contain_text("Saved")
    visit.shot("allowed-domains-saved")
    assert poll(keyguard, key, Origin="https://a.b.example.com") == (201, None)
    assert poll(keyguard, key, Origin="https://example.com") == (403, "origin_not_allowed")
    page.get_by_role("textbox", name="Allowed domains").fill("")
    visit.submit(page.get_by_role("button", name="Save"))
    expect(page.get_by_role("status")).to_contain_text("Saved")
    visit.shot("allowed-domains-cleared")

    # "Open your API key settings and click Enable TOTP", "Scan the QR code".
    visit.submit(page.get_by_role("button", name="Enable TOTP"))
    expect(page.locator(".qr svg")).to_be_visible()
    visit.shot("totp-enrol")
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    page.get_by_label("Code from the app").fill(pyotp.TOTP(secret).now())
    visit.submit(page.get_by_role("button", name="Confirm and enable"))
    expect(page.get_by_role("status")).to_contain_text("TOTP is on")
    header = re.search(r"X-[A-Za-z0-9-]+-TOTP", page.content())
    assert header
    visit.shot("totp-on")
    assert poll(keyguard, key) == (401, "totp_required")
    # The next step's code (the one just used is spent).
    later = pyotp.TOTP(secret).at(time.time() + 30)
    assert poll(keyguard, key, **{header.group(0): later}) == (201, None)
    visit.submit(page.get_by_role("button", name="Disable TOTP"))
    expect(page.get_by_role("status")).to_contain_text("TOTP is off")
    visit.shot("totp-off")

    # Rotation with a grace period: both keys work.
    visit.submit(page.get_by_role("link", name="Rotate", exact=True))
    visit.shot("rotate-confirm")
    page.get_by_label("Grace period").select_option(label="One hour")
    visit.submit(page.get_by_role("button", name="Rotate the key"))
    successor = page.locator("#new-key").inner_text().strip()
    visit.shot("rotated")
    assert successor != key
    assert poll(keyguard, key) == (201, None)
    assert poll(keyguard, successor) == (201, None)

    # Revocation: behind a confirmation, refused on the next request.
    visit.submit(page.get_by_role("link", name="I have copied it: open the key's settings"))
    visit.shot("successor")
    visit.submit(page.get_by_role("link", name="Revoke", exact=True))
    visit.shot("revoke-confirm")
    visit.submit(page.get_by_role("button", name="Revoke the key"))
    expect(page.get_by_role("status")).to_contain_text("revoked")
    visit.shot("revoked")
    assert poll(keyguard, successor) == (401, "key_revoked")


def _curl_poll(keyguard: KeyguardServer, key: str, *cert: str) -> tuple[int, str]:
    """The seed's `curl --cert`: a request with the key, and a client certificate if given."""
    port = keyguard.url.rsplit(":", 1)[1]
    args = [
        "curl", "-s", "-o", "-", "-w", "\n%{http_code}", "--cacert", str(keyguard.running.ca),
        "-H", f"Authorization: Bearer {key}", "-H", "Content-Type: application/json",
        "-d", json.dumps(BODY), *cert, f"https://localhost:{port}/v1/sessions",
    ]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
    body, _, status = done.stdout.rpartition("\n")
    return int(status), body


def test_seed_steps_client_certificate_upload_then_curl_cert(
    keyguard: KeyguardServer, visit: Visit, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    cert, private = self_signed("partner-server", now - timedelta(days=1), now + timedelta(days=90))
    cert_file, key_file = tmp_path / "client.pem", tmp_path / "client.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    page = visit.page
    sign_in(visit, keyguard.email, keyguard.password)
    visit.shot("signed-in")
    open_api_keys(visit)
    visit.shot("api-keys")
    key = create_key(visit, "Partner")
    visit.submit(page.get_by_role("link", name="I have copied it: open the key's settings"))
    visit.shot("key")
    # "Upload the certificate to your API key settings under Client Certificates".
    page.get_by_label("Upload a PEM file").set_input_files(str(cert_file))
    visit.submit(page.get_by_role("button", name="Add certificate"))
    expect(page.get_by_role("status")).to_contain_text("certificate was added")
    expect(page.get_by_text("CN=partner-server")).to_be_visible()
    visit.shot("certificate-added")
    status, body = _curl_poll(keyguard, key)
    assert status == 403, body
    assert json.loads(body)["code"] == "client_certificate_required"
    status, body = _curl_poll(keyguard, key, "--cert", str(cert_file), "--key", str(key_file))
    assert status == 201, body


def test_the_other_rooms_at_both_widths(keyguard: KeyguardServer, visit: Visit) -> None:
    """Usage and security, the audit log (verified), upload sessions, root keys and a new
    project: each reached by its link, each photographed."""
    page = visit.page
    sign_in(visit, keyguard.email, keyguard.password)
    visit.shot("signed-in")
    open_api_keys(visit)
    visit.shot("api-keys")
    key = create_key(visit, "Charts")
    for _ in range(3):
        assert poll(keyguard, key)[0] == 201
    assert poll(keyguard, "kg_live_AAAAAAAAAAAAAAAAAAAAAA")[0] == 401  # counted nowhere
    visit.submit(page.get_by_role("link", name="I have copied it: open the key's settings"))
    visit.shot("key")
    visit.submit(page.get_by_role("link", name="Usage and security"))
    expect(page.get_by_role("heading", name="Requests over time")).to_be_visible()
    visit.shot("usage")
    visit.submit(page.get_by_role("link", name="Audit log"))
    visit.shot("audit")
    visit.submit(page.get_by_role("button", name="Verify the chain now"))
    expect(page.get_by_text(re.compile("the chain is intact"))).to_be_visible()
    expect(page.locator("#checkpoint")).to_be_visible()  # an administrator
    visit.shot("audit-verified")
    visit.submit(page.get_by_role("link", name="Upload sessions"))
    visit.shot("uploads")
    visit.submit(page.get_by_role("link", name="Root Keys"))
    expect(page.get_by_role("heading", name="Root Keys", exact=True)).to_be_visible()
    visit.shot("root-keys")
    visit.submit(
        page.get_by_role("navigation", name="Account").get_by_role("link", name="Projects")
    )
    visit.shot("projects")
    page.get_by_label("Project", exact=True).fill("Mobile app")
    visit.submit(page.get_by_role("button", name="Create project"))
    expect(page.locator("#webhook-secret")).to_be_visible()
    visit.shot("project-created")
