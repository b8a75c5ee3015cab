"""Two-factor sign-in: enrolment shows a QR code and the secret, a code confirms it and
ten recovery codes are shown once; sign-in then needs a code, each accepted once."""

from __future__ import annotations

import re

import pyotp
import pytest
from sqlalchemy import select

from account_pages import ADMIN_EMAIL, ADMIN_PASSWORD, SECRET, csrf_of, sign_in, submit
from keyguard.audit.models import AuditEvent
from keyguard.wire import SESSION_COOKIE

CODES = re.compile(r"\b([a-z2-9]{5}-[a-z2-9]{5})\b")


def shown_codes(html: str) -> list[str]:
    return CODES.findall(html.split("<pre", 1)[1].split("</pre>", 1)[0])


async def enrol(client, clock) -> tuple[pyotp.TOTP, list[str]]:
    """Sign in, turn two-factor on from the security page; the app and the codes."""
    await sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    started = await submit(client, "/account/security", "/account/two-factor/start", {})
    assert started.headers["location"] == "/account/two-factor/confirm"
    page = await client.get("/account/two-factor/confirm")
    assert "otpauth://" not in page.text  # the URI is in the QR code, not in the page text
    assert "<svg" in page.text
    app = pyotp.TOTP(SECRET.search(page.text).group(1).replace(" ", ""))
    confirmed = await client.post(
        "/account/two-factor/confirm",
        data={"csrf_token": csrf_of(page.text), "code": app.at(clock.now())},
    )
    assert confirmed.status_code == 200
    assert "shown only this once" in confirmed.text
    codes = shown_codes(confirmed.text)
    assert len(codes) == len(set(codes)) == 10
    return app, codes


async def sign_out(client) -> None:
    page = await client.get("/account/security")
    await client.post("/logout", data={"csrf_token": csrf_of(page.text)})


async def test_enrol_then_sign_in_with_a_code(client, admin, clock):
    app, _ = await enrol(client, clock)
    await sign_out(client)
    clock.advance(30)
    response = await sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD, code=app.at(clock.now()))
    assert response.status_code == 303
    assert response.headers["location"] == "/account"
    assert (await client.get("/account/security")).status_code == 200


async def test_the_password_alone_gives_no_session(client, admin, clock):
    await enrol(client, clock)
    await sign_out(client)
    response = await sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert response.headers["location"].startswith("/login/two-factor")
    assert SESSION_COOKIE not in client.cookies
    # The pending sign-in opens nothing.
    assert (await client.get("/account/security")).status_code == 303
    # And it expires.
    clock.advance(301)
    assert (await client.get("/login/two-factor")).headers["location"] == "/login"


async def test_a_code_is_accepted_once(client, admin, clock):
    app, _ = await enrol(client, clock)
    await sign_out(client)
    clock.advance(30)
    code = app.at(clock.now())
    assert (await sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD, code=code)).status_code == 303
    await sign_out(client)
    replay = await sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD, code=code)
    assert replay.status_code == 401
    assert "already used" in replay.text


@pytest.mark.parametrize("bad", ["two steps old", "full-width", "seven digits", "letters"])
async def test_codes_that_must_not_pass(client, admin, clock, bad):
    app, _ = await enrol(client, clock)
    await sign_out(client)
    clock.advance(90)
    now = clock.now()
    code = {
        "two steps old": app.at(now - 60),
        "full-width": "".join(chr(ord(c) - ord("0") + 0xFF10) for c in app.at(now)),
        "seven digits": app.at(now) + "1",
        "letters": "abcdef",
    }[bad]
    response = await sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD, code=code)
    assert response.status_code == 401
    assert SESSION_COOKIE not in client.cookies


async def test_a_recovery_code_signs_in_once(client, admin, clock, runtime):
    _, codes = await enrol(client, clock)
    await sign_out(client)
    spaced = codes[3].upper().replace("-", " ")  # as someone might type it
    assert (await sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD, code=spaced)).status_code == 303
    page = await client.get("/account/security")
    assert "Recovery codes left: 9" in page.text
    await sign_out(client)
    again = await sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD, code=codes[3])
    assert again.status_code == 401
    async with runtime.sessions() as db:
        actions = (await db.execute(select(AuditEvent.action))).scalars().all()
    assert actions.count("account.recovery_code_used") == 1


async def test_regenerating_voids_the_old_codes(client, admin, clock):
    _, old = await enrol(client, clock)
    fresh = await submit(client, "/account/security", "/account/two-factor/recovery-codes", {})
    new = shown_codes(fresh.text)
    assert len(new) == 10
    assert not set(new) & set(old)
    await sign_out(client)
    assert (await sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD, code=old[0])).status_code == 401
    assert (await sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD, code=new[0])).status_code == 303


async def test_turning_it_off_needs_a_fresh_code(client, admin, clock):
    app, codes = await enrol(client, clock)
    used = app.at(clock.now())  # the code that confirmed the enrolment
    refused = await submit(
        client, "/account/security", "/account/two-factor/disable", {"code": used}
    )
    assert "Two-factor is still on" in refused.text
    refused = await submit(
        client, "/account/security", "/account/two-factor/disable", {"code": codes[0]}
    )
    assert "Two-factor is still on" in refused.text
    clock.advance(30)
    done = await submit(
        client, "/account/security", "/account/two-factor/disable", {"code": app.at(clock.now())}
    )
    assert done.headers["location"] == "/account/security?flash=two_factor_disabled"
    assert "Enable Two-Factor Authentication" in (await client.get("/account/security")).text


async def test_sensitive_changes_need_a_recent_sign_in(client, admin, clock):
    await sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    clock.advance(11 * 60)
    await client.get("/account/security")  # still active, no longer recent
    started = await submit(client, "/account/security", "/account/two-factor/start", {})
    assert started.headers["location"] == "/account/reauth?next=/account/two-factor/start"
    wrong = await submit(
        client, "/account/reauth", "/account/reauth", {"password": "not it at all", "next": "/"}
    )
    assert wrong.status_code == 401
    ok = await submit(
        client,
        "/account/reauth",
        "/account/reauth",
        {"password": ADMIN_PASSWORD, "next": "/account/security"},
    )
    assert ok.headers["location"] == "/account/security"
    started = await submit(client, "/account/security", "/account/two-factor/start", {})
    assert started.headers["location"] == "/account/two-factor/confirm"


async def test_proving_it_again_rotates_the_session(client, admin, clock):
    await sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    before = client.cookies.get(SESSION_COOKIE)
    clock.advance(11 * 60)
    await client.get("/account/security")
    fields = {"password": ADMIN_PASSWORD, "next": "/account/security"}
    assert (await submit(client, "/account/reauth", "/account/reauth", fields)).status_code == 303
    after = client.cookies.get(SESSION_COOKIE)
    assert after != before
    assert (await client.get("/account/security")).status_code == 200
    # A copy of the cookie from before the privilege change opens nothing.
    client.cookies.set(SESSION_COOKIE, before)
    assert (await client.get("/account/security")).headers["location"].startswith("/login")


async def test_a_password_change_needs_the_current_one_and_ends_other_sessions(
    client, admin, clock
):
    await sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    common = await submit(
        client,
        "/account/password",
        "/account/password",
        {"current": ADMIN_PASSWORD, "new": "Password2024!"},
    )
    assert common.status_code == 422
    # The reason sits next to the field it is about, tied to it for screen readers.
    assert re.search(r'<p class="error" id="e-new">[^<]*too common', common.text)
    assert re.search(
        r'id="f-new"[^>]*aria-invalid="true"[^>]*aria-describedby="h-new e-new"', common.text
    )
    wrong = await submit(
        client,
        "/account/password",
        "/account/password",
        {"current": "not the password", "new": "a much better passphrase here"},
    )
    assert wrong.status_code == 422
    changed = await submit(
        client,
        "/account/password",
        "/account/password",
        {"current": ADMIN_PASSWORD, "new": "a much better passphrase here"},
    )
    assert changed.headers["location"] == "/account/security?flash=password_changed"
    await sign_out(client)
    assert (await sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)).status_code == 401
    ok = await sign_in(client, ADMIN_EMAIL, "a much better passphrase here")
    assert ok.status_code == 303
