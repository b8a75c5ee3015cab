"""Account > Apps: a person sees the apps they let act for them and takes access back; the
app's tokens then stop at every door, and the project hears of it. Nobody else's apps are
listed or revocable."""

from __future__ import annotations

from sqlalchemy import select

from account_pages import csrf_of
from keyguard.audit.models import AuditEvent
from oauth_helpers import REDIRECT, basic, code_for, probe, register_app


async def _tokens(client, person, app, pkce):
    code = await code_for(person, app.app.client_id, pkce[1])
    answer = await client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": pkce[0],
        },
        headers=basic(app.app.client_id, app.client_secret),
    )
    return answer.json()


async def test_an_app_is_listed_and_its_access_taken_back(runtime, client, person, app, pkce):
    empty = await person.get("/account/apps")
    assert "No app may act for you" in empty.text
    tokens = await _tokens(client, person, app, pkce)
    page = await person.get("/account/apps")
    assert "Partner app" in page.text
    assert "Default project" in page.text

    taken = await person.post(
        f"/account/apps/{app.app.id}/revoke", data={"csrf_token": csrf_of(page.text)}
    )
    assert taken.status_code == 303
    assert taken.headers["location"] == "/account/apps?flash=app_disconnected"
    refused = await probe(client, tokens["access_token"])
    assert refused.json()["code"] == "token_revoked"
    refresh = await client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        headers=basic(app.app.client_id, app.client_secret),
    )
    assert refresh.json()["error"] == "invalid_grant"
    after = await person.get("/account/apps?flash=app_disconnected")
    assert "Partner app" not in after.text
    assert "Access revoked" in after.text
    async with runtime.sessions() as db:
        actions = (await db.execute(select(AuditEvent.action))).scalars().all()
    assert "oauth.consent_revoked" in actions


async def test_revoking_needs_the_csrf_token(client, person, app, pkce):
    tokens = await _tokens(client, person, app, pkce)
    refused = await person.post(f"/account/apps/{app.app.id}/revoke")
    assert refused.status_code == 403
    assert (await probe(client, tokens["access_token"])).status_code == 404  # still works


async def test_another_persons_app_is_not_mine_to_revoke(
    runtime, client, person, browser, project_id, app, pkce
):
    from account_pages import join, sign_in

    tokens = await _tokens(client, person, app, pkce)
    await join(runtime, browser, project_id, person, "other@example.com", "viewer")
    async with browser() as other:
        from account_pages import NEW_PASSWORD

        assert (await sign_in(other, "other@example.com", NEW_PASSWORD)).status_code == 303
        page = await other.get("/account/apps")
        assert "Partner app" not in page.text
        answer = await other.post(
            f"/account/apps/{app.app.id}/revoke", data={"csrf_token": csrf_of(page.text)}
        )
        assert answer.status_code == 404
    assert (await probe(client, tokens["access_token"])).status_code == 404


async def test_signed_out_people_are_asked_to_sign_in(browser, admin):
    async with browser() as anonymous:
        answer = await anonymous.get("/account/apps")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login")


async def test_a_second_app_stays_when_one_is_revoked(runtime, client, person, project_id, pkce):
    first = await register_app(runtime, project_id, name="First app")
    second = await register_app(runtime, project_id, name="Second app")
    await _tokens(client, person, first, pkce)
    kept = await _tokens(client, person, second, pkce)
    page = await person.get("/account/apps")
    await person.post(
        f"/account/apps/{first.app.id}/revoke", data={"csrf_token": csrf_of(page.text)}
    )
    listed = (await person.get("/account/apps")).text
    assert "First app" not in listed
    assert "Second app" in listed
    assert (await probe(client, kept["access_token"])).status_code == 404
