"""Driving the account pages in-process like a browser: forms with their CSRF tokens."""

from __future__ import annotations

import re

import httpx

from keyguard.web.csrf import FIELD

# The account the root conftest's `admin` fixture creates.
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "correct horse battery staple"

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
