"""Signing in at /login: sessions in __Host- cookies, one answer for unknown emails and
wrong passwords, throttling, CSRF, no session fixation, and sign-out that ends the
session server-side."""

from __future__ import annotations

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from account_pages import ADMIN_EMAIL, ADMIN_PASSWORD, csrf_of, sign_in, submit
from keyguard.accounts.models import Account
from keyguard.accounts.throttle import LOCK_AFTER, LOCK_WINDOW, MAX_BACKOFF
from keyguard.app import create_asgi
from keyguard.audit.models import AuditEvent
from keyguard.mail.models import MailMessage
from keyguard.runtime import Runtime
from keyguard.wire import SESSION_COOKIE


async def test_a_person_signs_in_sees_security_and_signs_out(client, admin):
    page = await client.get("/login")
    assert page.status_code == 200
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    response = await sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert response.status_code == 303
    assert response.headers["location"] == "/account"
    cookie = next(c for c in response.headers.get_list("set-cookie") if SESSION_COOKIE in c)
    for attribute in ("Secure", "HttpOnly", "SameSite=lax", "Path=/"):
        assert attribute.lower() in cookie.lower()
    assert "domain" not in cookie.lower()
    security = await client.get("/account/security")
    assert security.status_code == 200
    assert "Enable Two-Factor Authentication" in security.text
    assert ADMIN_EMAIL in security.text
    stolen = client.cookies.get(SESSION_COOKIE)
    out = await client.post("/logout", data={"csrf_token": csrf_of(security.text)})
    assert out.headers["location"] == "/login?flash=signed_out"
    # The cookie a thief copied before sign-out no longer works: ended server-side.
    client.cookies.set(SESSION_COOKIE, stolen)
    again = await client.get("/account/security")
    assert again.status_code == 303
    assert again.headers["location"] == "/login?next=/account/security&flash=session_ended"
    told = await client.get(again.headers["location"])
    assert "Your session has ended" in told.text


async def test_unknown_email_and_wrong_password_get_the_same_answer(client, admin, runtime):
    unknown = await sign_in(client, "nobody@example.com", ADMIN_PASSWORD)
    wrong = await sign_in(client, ADMIN_EMAIL, "not the password at all")
    assert unknown.status_code == wrong.status_code == 401
    strip = lambda text: text.replace("nobody@example.com", "").replace(ADMIN_EMAIL, "")  # noqa: E731
    assert strip(unknown.text).replace(csrf_of(unknown.text), "") == strip(wrong.text).replace(
        csrf_of(wrong.text), ""
    )
    assert SESSION_COOKIE not in client.cookies
    async with runtime.sessions() as db:
        actions = (await db.execute(select(AuditEvent.action))).scalars().all()
    assert actions.count("account.sign_in_failed") == 2


async def test_a_form_without_its_csrf_token_changes_nothing(client, admin):
    await client.get("/login")
    response = await client.post("/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert response.status_code == 403
    assert "did not come from this site" in response.text
    assert SESSION_COOKIE not in client.cookies
    forged = await client.post(
        "/login",
        data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": "x" * 32},
    )
    assert forged.status_code == 403


async def test_a_token_from_another_browser_is_refused(client, admin, runtime):
    shown = await client.get("/login")
    token = csrf_of(shown.text)
    transport = httpx.ASGITransport(app=client._transport.app)  # type: ignore[attr-defined]
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as other:
        await other.get("/login")  # its own anonymous binding
        response = await other.post(
            "/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": token}
        )
    assert response.status_code == 403


async def test_signing_in_replaces_a_planted_session_cookie(client, admin):
    first = await sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert first.status_code == 303
    planted = client.cookies.get(SESSION_COOKIE)
    # Signing in again in the same browser (its login form, posted while signed in).
    second = await submit(
        client, "/account/security", "/login", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    )
    assert second.status_code == 303
    assert client.cookies.get(SESSION_COOKIE) != planted
    client.cookies.set(SESSION_COOKIE, planted)
    assert (await client.get("/account/security")).status_code == 303


async def test_guessing_is_throttled_with_back_off_then_locked(client, admin, clock, runtime):
    failures, waits = 0, []
    for _ in range(40):
        response = await sign_in(client, ADMIN_EMAIL, "wrong password guess")
        if response.status_code == 401:
            failures += 1
            continue
        assert response.status_code == 429
        waits.append(int(response.headers["retry-after"]))
        if waits[-1] > MAX_BACKOFF:
            break  # locked
        clock.advance(waits[-1])
    # Three free tries, then each wait doubles, then the lock after LOCK_AFTER attempts.
    assert failures == LOCK_AFTER
    assert waits[:-1] == [1, 2, 4, 8, 16, 32, 60]
    assert waits[-1] > MAX_BACKOFF
    # Locked: even the right password waits, and the owner got one email about it.
    assert (await sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)).status_code == 429
    async with runtime.sessions() as db:
        actions = (await db.execute(select(AuditEvent.action))).scalars().all()
        mails = (await db.execute(select(MailMessage.kind))).scalars().all()
    assert actions.count("account.locked") == 1
    assert mails == ["account_locked"]
    clock.advance(LOCK_WINDOW + 1)
    assert (await sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)).status_code == 303


async def lock_by_guessing(client, clock) -> None:
    """LOCK_AFTER wrong passwords, waiting out each back-off, and not one attempt more."""
    failures = 0
    while failures < LOCK_AFTER:
        response = await sign_in(client, ADMIN_EMAIL, "wrong password guess")
        if response.status_code == 401:
            failures += 1
        else:
            clock.advance(int(response.headers["retry-after"]))


async def test_the_owner_is_told_when_the_lock_happens_even_if_the_guessing_stops(
    client, admin, clock, runtime
):
    await lock_by_guessing(client, clock)
    async with runtime.sessions() as db:
        actions = (await db.execute(select(AuditEvent.action))).scalars().all()
        mails = (await db.execute(select(MailMessage.kind))).scalars().all()
    assert actions.count("account.locked") == 1
    assert mails == ["account_locked"]


async def test_after_the_lock_one_typo_is_one_failure(client, admin, clock):
    await lock_by_guessing(client, clock)
    clock.advance(LOCK_WINDOW + 1)
    assert (await sign_in(client, ADMIN_EMAIL, "one honest typo")).status_code == 401
    right = await sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert right.status_code == 303, (right.headers.get("retry-after"), right.text[-600:])


async def test_an_unknown_email_is_throttled_exactly_like_a_known_one(client, admin, clock):
    async def pattern(email: str) -> list[int]:
        seen = []
        for _ in range(6):
            seen.append((await sign_in(client, email, "wrong password guess")).status_code)
        return seen

    assert await pattern("nobody@example.com") == await pattern(ADMIN_EMAIL)


@pytest.mark.parametrize(
    "target", ["//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:x"]
)
async def test_next_never_leaves_the_site(client, admin, target):
    shown = await client.get(f"/login?next={target}")
    response = await client.post(
        "/login",
        data={
            "csrf_token": csrf_of(shown.text),
            "email": ADMIN_EMAIL,
            "password": ADMIN_PASSWORD,
            "next": target,
        },
    )
    assert response.headers["location"] == "/account"


async def test_pages_need_a_session(client, admin):
    response = await client.get("/account/sessions")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/account/sessions"


async def test_sessions_are_listed_and_revoked_elsewhere(client, admin, runtime: Runtime):
    await sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    transport = httpx.ASGITransport(
        app=client._transport.app,  # type: ignore[attr-defined]
        client=("198.51.100.20", 40000),
    )
    firefox = {"user-agent": "Firefox/130.0 (Windows)"}
    async with httpx.AsyncClient(
        transport=transport, base_url="https://testserver", headers=firefox
    ) as other:
        await sign_in(other, ADMIN_EMAIL, ADMIN_PASSWORD)
        listing = await client.get("/account/sessions")
        assert "198.51.100.20" in listing.text
        assert "Firefox on Windows" in listing.text
        await submit(client, "/account/sessions", "/account/sessions/revoke-others", {})
        assert (await other.get("/account/security")).status_code == 303
    assert (await client.get("/account/security")).status_code == 200


async def test_idle_and_absolute_timeouts_end_a_session(client, admin, clock):
    await sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    clock.advance(29 * 60)
    assert (await client.get("/account/security")).status_code == 200
    clock.advance(29 * 60)  # seen 29 minutes ago: still alive
    assert (await client.get("/account/security")).status_code == 200
    clock.advance(31 * 60)  # idle for 31 minutes
    assert (await client.get("/account/security")).status_code == 303
    await sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    for _ in range(25):  # active all along, but 12 hours is the most a session lives
        clock.advance(29 * 60)
        last = await client.get("/account/security")
    assert last.status_code == 303


async def test_a_strangers_guesses_never_lock_the_owners_own_browser(client, admin, clock, runtime):
    # The owner has signed in from this browser before: it holds a device cookie the
    # account knows.
    assert (await sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)).status_code == 303
    page = await client.get("/account/security")
    await client.post("/logout", data={"csrf_token": csrf_of(page.text)})
    transport = httpx.ASGITransport(app=create_asgi(runtime), client=("198.51.100.66", 1))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as thief:
        await lock_by_guessing(thief, clock)
        locked = await sign_in(thief, ADMIN_EMAIL, ADMIN_PASSWORD)
        assert locked.status_code == 429  # the email is locked for strangers
    assert (await sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)).status_code == 303


async def test_the_current_password_on_a_change_is_no_free_oracle(client, admin, runtime):
    await sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    statuses = []
    for i in range(LOCK_AFTER + 2):
        guess = {"current": f"guess number {i:02}", "new": "a brand new passphrase"}
        answer = await submit(client, "/account/password", "/account/password", guess)
        statuses.append(answer.status_code)
    assert statuses[0] == 422
    assert 429 in statuses  # the session's guesses back off, then stop
    right = {"current": ADMIN_PASSWORD, "new": "a brand new passphrase"}
    assert (
        await submit(client, "/account/password", "/account/password", right)
    ).status_code == 429
    async with runtime.sessions() as db:
        failed = select(AuditEvent.data).where(AuditEvent.action == "account.sign_in_failed")
        reasons = {data["reason"] for data in (await db.execute(failed)).scalars()}
    assert reasons == {"password_change"}


async def test_a_hash_made_with_older_parameters_is_upgraded_at_sign_in(client, admin, runtime):
    old = PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4).hash(ADMIN_PASSWORD)
    async with runtime.transaction() as db:
        account = (
            await db.execute(select(Account).where(Account.email == ADMIN_EMAIL))
        ).scalar_one()
        account.password_hash = old
    assert (await sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)).status_code == 303
    async with runtime.sessions() as db:
        stored = (
            await db.execute(select(Account.password_hash).where(Account.email == ADMIN_EMAIL))
        ).scalar_one()
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
