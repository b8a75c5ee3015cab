"""Changing the email: a recent sign-in, a link the new address must open while signed in,
a notice to the old address, and no way to learn which addresses have accounts."""

from __future__ import annotations

import re
from contextlib import asynccontextmanager

import httpx
import pytest
from sqlalchemy import select

from account_pages import ADMIN_EMAIL, ADMIN_PASSWORD, csrf_of, sign_in, submit
from keyguard.accounts.models import Account
from keyguard.accounts.passwords import hash_password
from keyguard.app import create_asgi
from keyguard.audit.models import AuditEvent
from keyguard.clock import utc_from_ts
from keyguard.ids import new_id
from keyguard.mail.models import MailMessage
from keyguard.runtime import Runtime
from keyguard.wire import SESSION_COOKIE

NEW = "new.address@example.com"


async def mails_to(runtime: Runtime, to: str, kind: str = "email_change") -> list[str]:
    async with runtime.sessions() as db:
        found = await db.execute(
            select(MailMessage.body).where(MailMessage.to_address == to, MailMessage.kind == kind)
        )
        return list(found.scalars())


async def link_in(runtime: Runtime, to: str) -> str:
    (body,) = await mails_to(runtime, to)
    found = re.search(r"https://[^/\s]+(/account/email/confirm/\S+)", body)
    assert found, body
    return found.group(1)


@pytest.fixture
async def signed_in(client, admin) -> httpx.AsyncClient:
    assert (await sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)).status_code == 303
    return client


@pytest.fixture
async def elsewhere(runtime: Runtime):
    """The same account signed in from another browser."""
    transport = httpx.ASGITransport(app=create_asgi(runtime), client=("198.51.100.20", 1234))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as other:
        assert (await sign_in(other, ADMIN_EMAIL, ADMIN_PASSWORD)).status_code == 303
        yield other


async def test_the_email_changes_when_the_new_address_opens_its_link(signed_in, elsewhere, runtime):
    asked = await submit(signed_in, "/account/email", "/account/email", {"email": NEW})
    assert asked.headers["location"] == "/account/security?flash=email_link_sent"
    async with runtime.sessions() as db:
        emails = (await db.execute(select(Account.email))).scalars().all()
    assert emails == [ADMIN_EMAIL]  # nothing moves before the link is opened
    link = await link_in(runtime, NEW)
    page = await signed_in.get(link)
    assert f"Move your account from {ADMIN_EMAIL} to {NEW}?" in page.text
    done = await signed_in.post(link, data={"csrf_token": csrf_of(page.text)})
    assert done.headers["location"] == "/account/security?flash=email_changed"
    assert NEW in (await signed_in.get("/account/security")).text
    (notice,) = await mails_to(runtime, ADMIN_EMAIL, "email_changed")
    assert f"changed from {ADMIN_EMAIL} to {NEW}" in notice
    # The other browser was signed out; the new address signs in, the old one not.
    assert (await elsewhere.get("/account/security")).status_code == 303
    elsewhere.cookies.clear()
    assert (await sign_in(elsewhere, ADMIN_EMAIL, ADMIN_PASSWORD)).status_code == 401
    assert (await sign_in(elsewhere, NEW, ADMIN_PASSWORD)).status_code == 303
    async with runtime.sessions() as db:
        actions = (await db.execute(select(AuditEvent.action))).scalars().all()
    assert {"account.email_change_requested", "account.email_changed"} <= set(actions)
    # The link worked once.
    assert (await signed_in.get(link)).status_code == 410


async def test_it_needs_a_recent_sign_in(signed_in, clock):
    clock.advance(11 * 60)
    page = await signed_in.get("/account/email")
    assert page.headers["location"] == "/account/reauth?next=/account/email"


async def test_a_link_opens_only_for_the_account_that_asked(signed_in, runtime, browser_of):
    await submit(signed_in, "/account/email", "/account/email", {"email": NEW})
    link = await link_in(runtime, NEW)
    # Someone who got hold of the email, signed in as another account, cannot use it.
    async with browser_of("other@example.com") as other:
        assert (await other.get(link)).status_code == 410
        token = csrf_of((await other.get("/account/security")).text)
        assert (await other.post(link, data={"csrf_token": token})).status_code == 410
    async with runtime.sessions() as db:
        emails = set((await db.execute(select(Account.email))).scalars())
    assert emails == {ADMIN_EMAIL, "other@example.com"}


async def test_an_address_with_an_account_gets_a_notice_and_the_same_answer(
    signed_in, runtime, browser_of
):
    async with browser_of("taken@example.com"):
        pass
    free = await submit(signed_in, "/account/email", "/account/email", {"email": NEW})
    taken = await submit(
        signed_in, "/account/email", "/account/email", {"email": "taken@example.com"}
    )
    assert free.headers["location"] == taken.headers["location"]
    (notice,) = await mails_to(runtime, "taken@example.com")
    assert "/account/email/confirm/" not in notice


@pytest.mark.parametrize("bad", ["not-an-email", ADMIN_EMAIL, "a@b", "x" * 330 + "@example.com"])
async def test_a_bad_address_is_refused_and_sends_nothing(signed_in, runtime, bad):
    refused = await submit(signed_in, "/account/email", "/account/email", {"email": bad})
    assert refused.status_code == 422
    async with runtime.sessions() as db:
        assert (await db.execute(select(MailMessage))).first() is None


@pytest.fixture
def browser_of(runtime: Runtime, admin, signed_in):
    """Another person's browser: their account is created directly, then signed in."""

    @asynccontextmanager
    async def open_one(email: str):
        async with runtime.transaction() as db:
            db.add(
                Account(
                    id=new_id("acct"),
                    email=email,
                    password_hash=await hash_password("another long phrase"),
                    created_at=utc_from_ts(runtime.clock.now()),
                )
            )
        transport = httpx.ASGITransport(app=create_asgi(runtime), client=("198.51.100.30", 1))
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c:
            assert (await sign_in(c, email, "another long phrase")).status_code == 303
            assert SESSION_COOKIE in c.cookies
            yield c

    return open_one
