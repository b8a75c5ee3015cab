"""The owner hears of every change to the ways into their account, by email, in the
change's transaction."""

from __future__ import annotations

import pyotp
from sqlalchemy import select

from account_pages import ADMIN_EMAIL, ADMIN_PASSWORD, SECRET, add_passkey, sign_in, submit
from keyguard.mail.models import MailMessage
from soft_authenticator import SoftAuthenticator


async def kinds(runtime) -> list[str]:
    async with runtime.sessions() as db:
        rows = await db.execute(
            select(MailMessage.kind, MailMessage.to_address).order_by(MailMessage.created_at)
        )
        return [kind for kind, to in rows.all() if to == ADMIN_EMAIL]


async def test_each_credential_change_sends_its_notice(client, admin, runtime, clock):
    await sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    await submit(client, "/account/security", "/account/two-factor/start", {})
    page = await client.get("/account/two-factor/confirm")
    app = pyotp.TOTP(SECRET.search(page.text).group(1).replace(" ", ""))
    await submit(
        client,
        "/account/two-factor/confirm",
        "/account/two-factor/confirm",
        {"code": app.at(clock.now())},
    )
    await submit(client, "/account/security", "/account/two-factor/recovery-codes", {})
    assert (await add_passkey(client, SoftAuthenticator())).status_code == 303
    clock.advance(30)
    await submit(
        client, "/account/security", "/account/two-factor/disable", {"code": app.at(clock.now())}
    )
    changed = await submit(
        client,
        "/account/password",
        "/account/password",
        {"current": ADMIN_PASSWORD, "new": "an entirely new passphrase"},
    )
    assert changed.status_code == 303
    assert await kinds(runtime) == [
        "two_factor_enabled",
        "recovery_codes_regenerated",
        "passkey_added",
        "two_factor_disabled",
        "password_changed",
    ]
    async with runtime.sessions() as db:
        body = (
            await db.execute(select(MailMessage.body).where(MailMessage.kind == "passkey_added"))
        ).scalar_one()
    assert "If it was not you, someone is in your account" in body
    assert "/account/sessions" in body


async def test_a_refused_change_sends_nothing(client, admin, runtime):
    await sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    refused = await submit(
        client,
        "/account/password",
        "/account/password",
        {"current": ADMIN_PASSWORD, "new": "password1234"},
    )
    assert refused.status_code == 422
    assert await kinds(runtime) == []
