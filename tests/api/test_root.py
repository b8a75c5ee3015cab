"""GET / leads a person to sign in, or to their projects when signed in."""

from __future__ import annotations

from account_pages import ADMIN_EMAIL, ADMIN_PASSWORD, sign_in
from keyguard.wire import SESSION_COOKIE


async def test_a_stranger_is_sent_to_sign_in(client):
    for method in ("GET", "HEAD"):
        response = await client.request(method, "/")
        assert response.status_code == 303, method
        assert response.headers["location"] == "/login"
        assert "content-security-policy" in response.headers


async def test_a_signed_in_person_is_sent_to_their_projects(client, admin):
    assert (await sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)).status_code == 303
    response = await client.get("/")
    assert response.status_code == 303
    assert response.headers["location"] == "/projects"
    assert (await client.get(response.headers["location"])).status_code == 200


async def test_a_cookie_that_opens_nothing_is_sent_to_sign_in(client, admin):
    client.cookies.set(SESSION_COOKIE, "not-a-session")
    response = await client.get("/")
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
