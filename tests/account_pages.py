"""Driving the account pages in-process like a browser: forms with their CSRF tokens."""

from __future__ import annotations

import re

import httpx

from keyguard.web.csrf import FIELD
from soft_authenticator import SoftAuthenticator

# The account the root conftest's `admin` fixture creates.
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "correct horse battery staple"

# The TOTP secret on the enrolment page, in groups of four.
SECRET = re.compile(r'<code id="totp-secret">([A-Z2-7 ]+)</code>')
_TOKEN = re.compile(rf'name="{FIELD}" value="([^"]+)"')


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
    return await client.post(action, data={FIELD: csrf_of(shown.text), **fields})


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
