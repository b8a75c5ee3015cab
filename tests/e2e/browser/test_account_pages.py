"""The account pages in a real browser: sign-in and out, a wrong password, two-factor with an
authenticator app and a recovery code, revoking another browser's session, and signing in
with the keyboard alone.

Locators are the accessible ones (labels, roles and names), so passing also means the forms
are labelled and their buttons named. Every page visited is photographed at laptop and
phone widths (see ``Visit`` in conftest.py).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pyotp
import pytest
from keyguard_browser import PHONE, Certificates, KeyguardServer, OpenPage, Visit, start_keyguard
from playwright.sync_api import expect

from keyguard.wire import SESSION_COOKIE

pytestmark = pytest.mark.e2e

ACCOUNT = re.compile(r"^https://localhost:\d+/account/security$")
LOGIN = re.compile(r"^https://localhost:\d+/login(\?.*)?$")
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
TOTP_STEP = 30


def show_sign_in(visit: Visit, name: str = "sign-in") -> None:
    visit.goto("/login")
    expect(visit.page.get_by_role("heading", name="Sign in", exact=True)).to_be_visible()
    visit.shot(name)


def sign_in(visit: Visit, email: str, password: str) -> None:
    """Fill and send the sign-in form (the caller checks where it leads)."""
    show_sign_in(visit)
    visit.page.get_by_label("Email").fill(email)
    visit.page.get_by_label("Password").fill(password)
    visit.submit(visit.page.get_by_role("button", name="Sign in", exact=True))


def expect_security_page(visit: Visit, name: str) -> None:
    expect(visit.page).to_have_url(ACCOUNT)
    expect(visit.page.get_by_role("heading", name="Security", exact=True)).to_be_visible()
    visit.shot(name)


def sign_out(visit: Visit) -> None:
    visit.submit(visit.page.get_by_role("button", name="Sign out", exact=True))
    expect(visit.page).to_have_url(LOGIN)
    expect(visit.page.get_by_role("status")).to_have_text("You are signed out.")
    visit.shot("signed-out")


def has_session_cookie(visit: Visit) -> bool:
    return any(c["name"] == SESSION_COOKIE for c in visit.page.context.cookies())


# ---- the browser trusts the server ---------------------------------------------------


def test_the_browser_trusts_keyguard_and_offers_webauthn(
    keyguard: KeyguardServer, visit: Visit
) -> None:
    page = visit.page
    cdp = page.context.new_cdp_session(page)
    states: list[dict[str, Any]] = []
    cdp.on("Security.visibleSecurityStateChanged", lambda e: states.append(e))
    cdp.send("Security.enable")

    response = visit.goto("/login")
    assert response.status == 200
    # With a certificate error the navigation fails (net::ERR_CERT_...) or lands on a
    # chrome-error:// interstitial instead of the form.
    assert page.url == f"{keyguard.url}/login"
    expect(page.get_by_role("heading", name="Sign in", exact=True)).to_be_visible()
    visit.shot("sign-in")

    assert page.evaluate("window.isSecureContext") is True
    assert page.evaluate("typeof PublicKeyCredential") == "function"
    deadline = time.monotonic() + 5
    while not states and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert states, "Chromium reported no security state for the page"
    state = states[-1]["visibleSecurityState"]
    certificate = state["certificateSecurityState"]
    assert state["securityState"] == "secure", state
    assert "certificateNetworkError" not in certificate, certificate
    assert certificate["subjectName"] == "localhost"
    assert certificate["issuer"] == "Keyguard Development CA"

    # WebAuthn runs here with the public URL's host as RP ID (a virtual authenticator).
    cdp.send("WebAuthn.enable")
    cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
            }
        },
    )
    created = page.evaluate(
        """async () => {
            const credential = await navigator.credentials.create({publicKey: {
                challenge: crypto.getRandomValues(new Uint8Array(32)),
                rp: {name: "Keyguard", id: "localhost"},
                user: {id: new Uint8Array(16), name: "probe", displayName: "probe"},
                pubKeyCredParams: [{type: "public-key", alg: -7}],
                timeout: 10000,
            }});
            return credential.type;
        }"""
    )
    assert created == "public-key"


# ---- signing in and out --------------------------------------------------------------


def test_sign_in_lands_on_the_account_and_sign_out_ends_the_session(
    keyguard: KeyguardServer, visit: Visit
) -> None:
    sign_in(visit, keyguard.email, keyguard.password)
    expect_security_page(visit, "account-security")
    expect(visit.page.get_by_role("navigation", name="Account")).to_be_visible()
    expect(visit.page.get_by_text(keyguard.email, exact=True)).to_be_visible()
    assert has_session_cookie(visit)

    sign_out(visit)
    assert not has_session_cookie(visit)
    visit.goto("/account")
    expect(visit.page).to_have_url(re.compile(r"/login\?next=/account$"))
    visit.shot("account-after-sign-out")


def test_a_wrong_password_shows_an_error_and_signs_nobody_in(
    keyguard: KeyguardServer, visit: Visit
) -> None:
    show_sign_in(visit)
    page = visit.page
    page.get_by_label("Email").fill(keyguard.email)
    page.get_by_label("Password").fill("not the password")
    response = visit.submit(page.get_by_role("button", name="Sign in", exact=True))

    assert response is not None
    assert response.status == 401
    expect(page.get_by_role("alert")).to_have_text("The email or password is not right.")
    expect(page.get_by_label("Email")).to_have_value(keyguard.email)
    expect(page.get_by_label("Password")).to_have_value("")
    visit.shot("wrong-password")
    assert not has_session_cookie(visit)

    visit.goto("/account/security")
    expect(page).to_have_url(re.compile(r"/login\?next=/account/security$"))
    visit.shot("account-refused")


def test_the_sign_in_form_works_with_the_keyboard_alone(
    keyguard: KeyguardServer, visit: Visit
) -> None:
    show_sign_in(visit)
    page = visit.page
    email = page.get_by_label("Email")
    password = page.get_by_label("Password")
    button = page.get_by_role("button", name="Sign in", exact=True)

    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    for _ in range(4):
        if email.evaluate("element => element === document.activeElement"):
            break
        page.keyboard.press("Tab")
    expect(email).to_be_focused()
    page.keyboard.type(keyguard.email)
    page.keyboard.press("Tab")
    expect(password).to_be_focused()
    page.keyboard.type(keyguard.password)
    page.keyboard.press("Tab")
    expect(button).to_be_focused()
    ring = button.evaluate(
        "b => { const s = getComputedStyle(b); return [s.outlineStyle, s.boxShadow]; }"
    )
    assert ring != ["none", "none"], "the focused button shows no focus indicator"
    visit.shot("sign-in-button-focused")

    visit.press("Enter")
    expect_security_page(visit, "signed-in-by-keyboard")


# ---- sessions ------------------------------------------------------------------------


def test_revoking_another_session_sends_that_browser_to_sign_in(
    keyguard: KeyguardServer, open_page: OpenPage
) -> None:
    laptop = open_page(label="laptop")
    phone = open_page(label="phone", viewport=PHONE, user_agent=IPHONE)
    sign_in(laptop, keyguard.email, keyguard.password)
    expect_security_page(laptop, "signed-in")
    sign_in(phone, keyguard.email, keyguard.password)
    expect_security_page(phone, "signed-in")

    page = laptop.page
    laptop.goto("/account/sessions")
    expect(page.get_by_role("heading", name="Active sessions", exact=True)).to_be_visible()
    table = page.get_by_role("table", name="Signed-in browsers")
    mine = table.get_by_role("row").filter(has_text="This browser")
    expect(mine).to_have_count(1)
    expect(mine.get_by_role("button")).to_have_count(0)  # no "sign out" on this one
    expect(table.get_by_role("row").filter(has_text="Safari on iOS")).to_have_count(1)
    laptop.shot("sessions")

    revoke = page.get_by_role("button", name=re.compile(r"^Sign out Safari on iOS at "))
    expect(revoke).to_have_count(1)
    laptop.submit(revoke)
    expect(page.get_by_role("status")).to_have_text("The session was signed out.")
    expect(table.get_by_role("row").filter(has_text="Safari on iOS")).to_have_count(0)
    expect(mine).to_have_count(1)
    laptop.shot("sessions-after-revoke")

    phone.page.reload()
    # Sent to sign in, and told why.
    expect(phone.page).to_have_url(
        re.compile(r"/login\?next=/account/security&flash=session_ended$")
    )
    expect(phone.page.get_by_role("status")).to_have_text(re.compile("Your session has ended"))
    expect(phone.page.get_by_role("heading", name="Sign in", exact=True)).to_be_visible()
    phone.shot("revoked")


# ---- two-factor ----------------------------------------------------------------------


@pytest.fixture
def own_keyguard(tmp_path: Any, certificates: Certificates) -> Iterator[KeyguardServer]:
    """A server of its own: turning two-factor on changes its account for good."""
    with start_keyguard(tmp_path, certificates) as server:
        yield server


def next_code(totp: pyotp.TOTP, spent_step: int, spent_code: str) -> str:
    """A code the server accepts now (it takes the step before and after too) from another
    step than the one spent: each step is accepted only once."""
    now = int(time.time()) // TOTP_STEP
    for step in (now, now + 1):
        code = totp.at(step * TOTP_STEP)
        if step != spent_step and code != spent_code:
            return str(code)
    raise AssertionError("no fresh TOTP step")  # pragma: no cover


def test_two_factor_enrolment_then_sign_in_with_a_code_and_with_a_recovery_code(
    own_keyguard: KeyguardServer, open_page: OpenPage
) -> None:
    visit = open_page(server=own_keyguard)
    page = visit.page
    sign_in(visit, own_keyguard.email, own_keyguard.password)
    expect_security_page(visit, "security-two-factor-off")
    section = page.get_by_role("region", name="Two-Factor Authentication")
    expect(section.get_by_text("Off: your password alone signs you in.")).to_be_visible()

    visit.submit(section.get_by_role("button", name="Enable Two-Factor Authentication"))
    if "/account/reauth" in page.url:  # the sign-in was not recent enough
        expect(page.get_by_role("heading", name="Confirm it is you")).to_be_visible()
        visit.shot("reauth")
        page.get_by_label("Password").fill(own_keyguard.password)
        visit.submit(page.get_by_role("button", name="Confirm", exact=True))

    expect(page).to_have_url(re.compile(r"/account/two-factor/confirm$"))
    expect(page.get_by_role("heading", name="Enable Two-Factor Authentication")).to_be_visible()
    expect(
        page.get_by_role("img", name="QR code to add Keyguard to your authenticator app")
    ).to_be_visible()
    visit.shot("two-factor-enrol")
    secret = "".join(page.locator("#totp-secret").inner_text().split()).upper()
    totp = pyotp.TOTP(secret)
    spent_step = int(time.time()) // TOTP_STEP
    spent_code = str(totp.at(spent_step * TOTP_STEP))
    page.get_by_label("Code from your app").fill(spent_code)
    visit.submit(page.get_by_role("button", name="Turn on", exact=True))

    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    expect(page.get_by_role("alert")).to_have_text(
        "These codes are shown only this once. Save them now."
    )
    codes = page.locator("#recovery-codes").inner_text().split()
    assert len(codes) == 10
    assert len(set(codes)) == 10
    assert all(re.fullmatch(r"[a-z0-9]{5}-[a-z0-9]{5}", code) for code in codes), codes
    visit.shot("recovery-codes")

    visit.submit(page.get_by_role("link", name="I have saved my codes"))
    expect_security_page(visit, "security-two-factor-on")
    expect(section.get_by_text("On: sign-in asks for a code")).to_be_visible()
    expect(section.get_by_text("Recovery codes left: 10.")).to_be_visible()
    sign_out(visit)

    # The password alone is not enough any more: a code from the app.
    sign_in(visit, own_keyguard.email, own_keyguard.password)
    expect(page).to_have_url(re.compile(r"/login/two-factor\?next=/account$"))
    expect(page.get_by_role("heading", name="Two-factor authentication")).to_be_visible()
    assert not has_session_cookie(visit)
    visit.shot("two-factor-prompt")
    page.get_by_label("Authentication code").fill(next_code(totp, spent_step, spent_code))
    visit.submit(page.get_by_role("button", name="Verify", exact=True))
    expect_security_page(visit, "signed-in-with-totp")
    sign_out(visit)

    # Or one of the recovery codes, each good once.
    sign_in(visit, own_keyguard.email, own_keyguard.password)
    expect(page).to_have_url(re.compile(r"/login/two-factor\?next=/account$"))
    visit.shot("two-factor-prompt-again")
    page.get_by_label("Authentication code").fill(codes[0])
    visit.submit(page.get_by_role("button", name="Verify", exact=True))
    expect_security_page(visit, "signed-in-with-recovery-code")
    expect(section.get_by_text("Recovery codes left: 9.")).to_be_visible()
