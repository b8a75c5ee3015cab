"""Driving the account pages in-process like a browser: forms with their CSRF tokens."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import select

from keyguard.mail.models import MailMessage
from keyguard.runtime import Runtime
from keyguard.web.csrf import FIELD
from soft_authenticator import SoftAuthenticator

# The account the root conftest's `admin` fixture creates.
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "correct horse battery staple"
# The password of the accounts that join by invitation (join()).
NEW_PASSWORD = "a long and private phrase"

# The TOTP secret on the enrolment page, in groups of four.
SECRET = re.compile(r'<code id="totp-secret">([A-Z2-7 ]+)</code>')
_TOKEN = re.compile(rf'name="{FIELD}" value="([^"]+)"')


_ONCE = re.compile(r'name="once" value="([^"]+)"')


def once_of(html: str) -> dict[str, str]:
    """The one-time value of a form that makes a secret (pages.spend_once), if the page
    has one: as form fields to send."""
    found = _ONCE.search(html)
    return {"once": found.group(1)} if found else {}


def csrf_of(html: str) -> str:
    found = _TOKEN.search(html)
    assert found, "the page has no CSRF token"
    return found.group(1)


async def submit(
    client: httpx.AsyncClient, page: str, action: str, fields: dict[str, str]
) -> httpx.Response:
    """GET ``page``, then POST ``fields`` to ``action`` with the page's CSRF token."""
    shown = await client.get(page)
    assert shown.status_code == 200, shown.text
    form = {FIELD: csrf_of(shown.text), **once_of(shown.text), **fields}
    return await client.post(action, data=form)


async def sign_in(
    client: httpx.AsyncClient, email: str, password: str, code: str | None = None
) -> httpx.Response:
    response = await submit(client, "/login", "/login", {"email": email, "password": password})
    if code is not None:
        assert response.headers["location"].startswith("/login/two-factor")
        response = await submit(client, "/login/two-factor", "/login/two-factor", {"code": code})
    return response


async def begin(client: httpx.AsyncClient, page: str, url: str, **fields: str):
    token = csrf_of((await client.get(page)).text)
    return token, await client.post(url, data={FIELD: token, **fields})


async def add_passkey(
    client: httpx.AsyncClient, authenticator: SoftAuthenticator, name: str = "Work laptop", **kw
) -> httpx.Response:
    token, options = await begin(client, "/account/security", "/account/passkeys/options")
    assert options.status_code == 200, options.text
    credential = authenticator.create(options.json(), **kw)
    fields = {FIELD: token, "name": name, "credential": credential}
    return await client.post("/account/passkeys", data=fields)


async def last_link(runtime: Runtime, to: str, path: str) -> str:
    async with runtime.sessions() as db:
        bodies = (
            await db.execute(
                select(MailMessage.body)
                .where(MailMessage.to_address == to)
                .order_by(MailMessage.created_at.desc(), MailMessage.id.desc())
            )
        ).scalars()
        body = next(iter(bodies))
    found = re.search(rf"https://[^/\s]+({path}/\S+)", body)
    assert found, body
    return found.group(1)


async def invite(client, project_id: str, email: str, role: str) -> httpx.Response:
    return await submit(
        client,
        f"/projects/{project_id}/members",
        f"/projects/{project_id}/members/invite",
        {"email": email, "role": role},
    )


async def join(runtime, browser, project_id, client, email, role) -> str:
    """Invite ``email`` as ``role`` and accept as a new account; returns the link path."""
    assert (await invite(client, project_id, email, role)).status_code == 303
    link = await last_link(runtime, email, "/invitations")
    async with browser() as other:
        joined = await submit(other, link, link, {"password": NEW_PASSWORD})
        assert joined.status_code == 303, joined.text
    return link
