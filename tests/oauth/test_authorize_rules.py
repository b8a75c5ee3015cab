"""The authorization endpoint (RFC 9700 §2.1, §4.1): nobody is redirected anywhere that
was not registered exactly; PKCE S256 is required; errors go back with state and iss;
the consent page needs a signed-in person, a CSRF token, and grants only what the
person's role grants."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from oauth_helpers import REDIRECT, authorize_query, consent, register_app


def _query(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def test_an_unknown_client_gets_a_page_not_a_redirect(person, pkce):
    page = await person.get("/oauth/authorize", params=authorize_query("client_nope", pkce[1]))
    assert page.status_code == 400
    assert "location" not in page.headers


@pytest.mark.parametrize(
    "uri",
    [
        REDIRECT + "/",  # trailing slash
        REDIRECT.upper().replace("HTTPS", "https"),  # case
        "https://app.example.com:8443/callback",  # port
        REDIRECT + "?next=https://evil.example",  # query
        REDIRECT + "#x",  # fragment
        "https://evil.example/callback",
        "https://app.example.com.evil.example/callback",
        "https://app.example.com@evil.example/callback",
    ],
)
async def test_a_redirect_uri_not_registered_exactly_is_never_followed(person, app, pkce, uri):
    page = await person.get(
        "/oauth/authorize", params=authorize_query(app.app.client_id, pkce[1], redirect_uri=uri)
    )
    assert page.status_code == 400
    assert "location" not in page.headers


async def test_a_loopback_redirect_may_use_any_port(runtime, project_id, person, pkce):
    native = await register_app(
        runtime, project_id, public=True, redirect_uris=("http://127.0.0.1/callback",)
    )
    params = authorize_query(
        native.app.client_id, pkce[1], redirect_uri="http://127.0.0.1:53123/callback"
    )
    answer = await consent(person, params)
    assert answer.headers["location"].startswith("http://127.0.0.1:53123/callback?code=")
    # ... but not another host, nor user info in front of the loopback address.
    for uri in ("http://127.0.0.2:53123/callback", "http://x@127.0.0.1:1/callback"):
        page = await person.get(
            "/oauth/authorize",
            params=authorize_query(native.app.client_id, pkce[1], redirect_uri=uri),
        )
        assert page.status_code == 400


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),  # implicit
        ({"scope": "read admin"}, "invalid_scope"),
    ],
)
async def test_request_errors_go_back_to_the_app_with_state_and_iss(
    person, app, pkce, overrides, error
):
    answer = await person.get(
        "/oauth/authorize", params=authorize_query(app.app.client_id, pkce[1], **overrides)
    )
    assert answer.status_code == 303
    assert answer.headers["location"].startswith(REDIRECT + "?")
    query = _query(answer.headers["location"])
    assert query["error"] == error
    assert query["state"] == "state-123"
    assert query["iss"] == "https://testserver"
    assert "code" not in query


async def test_someone_signed_out_is_asked_to_sign_in_and_comes_back(browser, admin, app, pkce):
    async with browser() as anonymous:
        params = authorize_query(app.app.client_id, pkce[1])
        answer = await anonymous.get("/oauth/authorize", params=params)
    assert answer.status_code == 303
    location = answer.headers["location"]
    assert location.startswith("/login?next=/oauth/authorize%3F")
    assert "code_challenge" in location


async def test_the_consent_form_needs_its_csrf_token(person, app, pkce):
    params = authorize_query(app.app.client_id, pkce[1])
    answer = await person.post("/oauth/authorize", data={**params, "decision": "allow"})
    assert answer.status_code == 403
    assert "location" not in answer.headers


async def test_a_consent_is_audited(runtime, person, app, pkce, admin):
    from sqlalchemy import select

    from keyguard.audit.models import AuditEvent

    assert (await consent(person, authorize_query(app.app.client_id, pkce[1]))).status_code == 303
    async with runtime.sessions() as db:
        events = (
            await db.execute(select(AuditEvent).where(AuditEvent.action == "oauth.consent_given"))
        ).scalars()
        (event,) = list(events)
    assert event.actor == admin.account.id
    assert event.data == {"client_id": app.app.client_id, "scopes": ["read"]}


async def test_a_denial_goes_back_as_access_denied(person, app, pkce):
    answer = await consent(person, authorize_query(app.app.client_id, pkce[1]), "deny")
    query = _query(answer.headers["location"])
    assert query["error"] == "access_denied"
    assert query["state"] == "state-123"
    assert "code" not in query


async def test_a_tampered_consent_form_is_checked_again(person, app, pkce):
    params = authorize_query(app.app.client_id, pkce[1])
    page = await person.get("/oauth/authorize", params=params)
    from account_pages import csrf_of

    forged = {**params, "redirect_uri": "https://evil.example/cb", "decision": "allow"}
    answer = await person.post(
        "/oauth/authorize", data={**forged, "csrf_token": csrf_of(page.text)}
    )
    assert answer.status_code == 400
    assert "location" not in answer.headers


async def test_the_page_names_the_app_and_cannot_be_framed(person, app, pkce):
    page = await person.get("/oauth/authorize", params=authorize_query(app.app.client_id, pkce[1]))
    assert "Partner app" in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    # The answer redirects to the app: form-action names its origin, and only it.
    assert "form-action 'self' https://app.example.com;" in page.headers["content-security-policy"]
    assert not any(h.startswith("access-control-") for h in page.headers)


async def test_the_consent_page_speaks_the_persons_language(person, app, pkce):
    page = await person.get(
        "/oauth/authorize",
        params=authorize_query(app.app.client_id, pkce[1]),
        headers={"Accept-Language": "fr-CA"},
    )
    assert "Autoriser Partner app" in page.text
