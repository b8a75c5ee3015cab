"""Passkeys through Chromium's virtual authenticator, sign-up by invitation, and a viewer
who cannot change anything, in a real browser against a real `keyguard serve`."""

from __future__ import annotations

import re
import sqlite3

import pytest
from keyguard_browser import KeyguardServer, Visit
from playwright.sync_api import expect
from test_account_pages import expect_security_page, sign_in, sign_out

pytestmark = pytest.mark.e2e

NEW_PASSWORD = "a long and private phrase"


def mailbox(keyguard: KeyguardServer, to: str) -> str:
    """The newest email Keyguard wrote to ``to`` (held in its outbox: no SMTP here)."""
    database = keyguard.running.ca.parent.parent / "keyguard.db"
    with sqlite3.connect(database) as db:
        row = db.execute(
            "SELECT body FROM mail_outbox WHERE to_address = ? ORDER BY created_at DESC", (to,)
        ).fetchone()
    assert row, f"no email to {to}"
    return str(row[0])


def add_virtual_authenticator(visit: Visit) -> None:
    """A platform authenticator with user verification, as Chrome DevTools makes one."""
    cdp = visit.page.context.new_cdp_session(visit.page)
    cdp.send("WebAuthn.enable")
    options = {
        "protocol": "ctap2",
        "transport": "internal",
        "hasResidentKey": True,
        "hasUserVerification": True,
        "isUserVerified": True,
        "automaticPresenceSimulation": True,
    }
    cdp.send("WebAuthn.addVirtualAuthenticator", {"options": options})


def test_add_a_passkey_then_sign_in_with_it_and_no_password(
    keyguard: KeyguardServer, visit: Visit
) -> None:
    add_virtual_authenticator(visit)
    sign_in(visit, keyguard.email, keyguard.password)
    expect_security_page(visit, "security")
    page = visit.page
    page.get_by_label("Passkey name").fill("Virtual laptop")
    visit.submit(page.get_by_role("button", name="Add Passkey"))
    expect(page.get_by_role("status")).to_have_text(re.compile("The passkey was added"))
    expect(page.get_by_text("Virtual laptop", exact=True)).to_be_visible()
    visit.shot("passkey-added")
    sign_out(visit)

    visit.submit(page.get_by_role("button", name="Sign in with a passkey"))
    expect_security_page(visit, "signed-in-with-passkey")
    sessions = visit.goto("/account/sessions")
    assert sessions.status == 200
    visit.shot("sessions")


def test_an_invited_person_signs_up_and_joins_with_their_role(
    keyguard: KeyguardServer, open_page
) -> None:
    owner = open_page(label="owner")
    sign_in(owner, keyguard.email, keyguard.password)
    expect_security_page(owner, "signed-in")
    owner.goto("/projects")
    owner.shot("projects")
    owner.submit(owner.page.get_by_role("link", name="Members of Default project"))
    owner.shot("members")
    owner.page.get_by_label("Their email").fill("viewer@example.com")
    owner.page.get_by_label("Their role").select_option("viewer")
    owner.submit(owner.page.get_by_role("button", name="Send invitation"))
    expect(owner.page.get_by_role("heading", name="Pending invitations")).to_be_visible()
    owner.shot("invited")

    link = re.search(r"https://\S+/invitations/\S+", mailbox(keyguard, "viewer@example.com"))
    assert link
    invited = open_page(label="invited")
    invited.goto(link.group(0))
    expect(invited.page.get_by_role("heading", name="You are invited")).to_be_visible()
    invited.shot("invitation")
    invited.page.get_by_label("Password").fill(NEW_PASSWORD)
    invited.submit(invited.page.get_by_role("button", name="Create account and join"))
    expect(invited.page.get_by_role("status")).to_have_text(re.compile("Welcome"))
    expect(invited.page.get_by_role("cell", name="Viewer")).to_be_visible()
    invited.shot("joined")

    # The link worked once.
    again = open_page(label="again")
    reply = again.goto(link.group(0))
    assert reply.status == 410
    again.shot("link-used")

    # A viewer sees the members and no control that changes anything.
    invited.submit(invited.page.get_by_role("link", name="Members of Default project"))
    expect(invited.page.get_by_text("only owners manage members")).to_be_visible()
    assert invited.page.get_by_role("button", name="Send invitation").count() == 0
    assert invited.page.get_by_role("button", name=re.compile("^Remove")).count() == 0
    assert invited.page.get_by_role("combobox").count() == 0
    invited.shot("viewer-members")

    # In Settings > API Keys too: every key is shown, nothing can be changed. (A form
    # posted anyway is refused by the server: tests/dashboard/test_key_pages.py.)
    owner.goto("/projects")
    owner.shot("projects-again")
    owner.submit(owner.page.get_by_role("link", name="API keys of Default project"))
    owner.shot("api-keys")
    owner.page.get_by_label("Name", exact=True).fill("Shared")
    owner.submit(owner.page.get_by_role("button", name="Create key"))
    owner.shot("key-for-the-viewer")
    invited.submit(
        invited.page.get_by_role("navigation", name="Account").get_by_role("link", name="Projects")
    )
    invited.shot("viewer-projects")
    invited.submit(invited.page.get_by_role("link", name="API keys of Default project"))
    expect(invited.page.get_by_role("heading", name="API Keys", exact=True)).to_be_visible()
    assert invited.page.get_by_role("button", name="Create key").count() == 0
    invited.shot("viewer-api-keys")
    invited.submit(invited.page.get_by_role("link", name="Shared"))
    expect(invited.page.get_by_text("does not let you change it")).to_be_visible()
    assert invited.page.get_by_role("button", name="Save").count() == 0
    assert invited.page.get_by_role("button", name="Enable TOTP").count() == 0
    assert invited.page.get_by_role("link", name="Revoke", exact=True).count() == 0
    invited.shot("viewer-key")
