"""OAuth apps in the dashboard, in-process: apps registered (confidential: the client
secret shown once, in the response that made it; public: none), refused redirect URIs,
domains and scopes shown next to their field with nothing made, settings saved in one
update of only what changed, the secret rotated with a grace period (the old one still
authenticates until it ends) and apps deleted; a viewer or a developer sees the apps but
every change is refused, another project's app is a 404, a form without its CSRF token
is refused."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import func, select

from account_pages import ADMIN_EMAIL, ADMIN_PASSWORD, NEW_PASSWORD, csrf_of, join, once_of, sign_in
from keyguard.audit.models import AuditEvent
from keyguard.clock import FrozenClock
from keyguard.errors import NotFound
from keyguard.oauth import apps
from keyguard.oauth.apps import AppSpec
from keyguard.oauth.clients import ClientRecord, authenticate_client, presented_client
from keyguard.oauth.errors import InvalidClient
from keyguard.runtime import Runtime
from keyguard.web.csrf import FIELD

CLIENT_ID = re.compile(r'<code id="client-id">([^<]+)</code>')
SECRET = re.compile(r'<code id="client-secret">([^<]+)</code>')
CALLBACK = "https://partner.example.com/oauth/callback"


def room(project_id: str) -> str:
    return f"/projects/{project_id}/oauth-apps"


def app_url(project_id: str, app_id: str) -> str:
    return f"{room(project_id)}/{app_id}"


async def post(
    client: httpx.AsyncClient, page: str, action: str, fields: dict[str, str]
) -> httpx.Response:
    """GET ``page`` for its CSRF token (and one-time value), then POST ``fields``."""
    shown = await client.get(page)
    assert shown.status_code == 200, shown.text
    return await client.post(
        action, data={FIELD: csrf_of(shown.text), **once_of(shown.text), **fields}
    )


def app_fields(
    name: str = "Partner portal",
    *,
    redirect_uris: str = CALLBACK,
    allowed_domains: str = "",
    scopes: str = "keys:read",
    public: bool = False,
) -> dict[str, str]:
    fields = {
        "name": name,
        "redirect_uris": redirect_uris,
        "allowed_domains": allowed_domains,
        "scopes": scopes,
    }
    if public:
        fields["public"] = "yes"
    return fields


async def register(client: httpx.AsyncClient, project_id: str, **fields: object) -> httpx.Response:
    return await post(client, room(project_id), room(project_id), app_fields(**fields))  # type: ignore[arg-type]


async def registered(client: httpx.AsyncClient, project_id: str, **fields: object) -> str:
    """Register an app through the room; its id."""
    made = await register(client, project_id, **fields)
    assert made.status_code == 201, made.text
    found = re.search(rf'href="{room(project_id)}/(oapp_\w+)"', made.text)
    assert found
    return found.group(1)


async def authenticates(runtime: Runtime, client_id: str, secret: str) -> ClientRecord:
    """What the token endpoint does with these credentials (client_secret_post)."""
    presented = presented_client(None, {"client_id": client_id, "client_secret": secret})
    return await authenticate_client(runtime, presented, client_ip=None)


async def audit_events(runtime: Runtime, target: str) -> list[AuditEvent]:
    async with runtime.sessions() as db:
        query = select(AuditEvent).where(AuditEvent.target == target).order_by(AuditEvent.seq)
        return list((await db.execute(query)).scalars())


async def audit_count(runtime: Runtime, target: str) -> int:
    async with runtime.sessions() as db:
        query = select(func.count()).select_from(AuditEvent).where(AuditEvent.target == target)
        return int((await db.execute(query)).scalar_one())


async def test_the_room_is_in_the_project_nav_and_says_what_to_do_first(owner, project_id) -> None:
    keys = await owner.get(f"/projects/{project_id}/settings/api-keys")
    assert f'href="{room(project_id)}"' in keys.text
    page = await owner.get(room(project_id))
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert "<h1>OAuth apps</h1>" in page.text
    assert f'href="{room(project_id)}" aria-current="page"' in page.text
    assert "No OAuth apps yet." in page.text
    assert "Register one below" in page.text
    assert "Register an app" in page.text
    assert 'name="once"' in page.text  # the form makes a secret: sent once
    # The wildcard rule beside the allowed domains, as on the key page.
    assert "*.example.com allows every subdomain at any depth" in page.text
    assert "/.well-known/oauth-authorization-server" in page.text


async def test_a_confidential_app_shows_its_secret_once_and_the_secret_works(
    owner, project_id, runtime
) -> None:
    shown = await owner.get(room(project_id))
    fields = {
        FIELD: csrf_of(shown.text),
        **once_of(shown.text),
        **app_fields(
            redirect_uris=f"{CALLBACK}\nhttp://127.0.0.1/cb",
            allowed_domains="*.partner.example.com\npartner.example.com",
            scopes="keys:read keys:write\nusage:read",
        ),
    }
    made = await owner.post(room(project_id), data=fields)
    assert made.status_code == 201, made.text
    assert made.headers["cache-control"] == "no-store"
    assert "shown only once" in made.text
    assert 'role="alert"' in made.text
    assert 'data-copy="client-secret"' in made.text
    client_id = CLIENT_ID.search(made.text).group(1)  # type: ignore[union-attr]
    secret = SECRET.search(made.text).group(1)  # type: ignore[union-attr]
    assert secret.startswith("kgcs_")
    [app] = await apps.list_apps(runtime, project_id)
    assert (app.client_id, app.name, app.public) == (client_id, "Partner portal", False)
    assert app.redirect_uris == (CALLBACK, "http://127.0.0.1/cb")
    assert app.allowed_domains == ("*.partner.example.com", "partner.example.com")
    assert app.scopes == ("keys:read", "keys:write", "usage:read")
    # It is the secret the token endpoint accepts.
    assert (await authenticates(runtime, client_id, secret)).app_id == app.id
    with pytest.raises(InvalidClient):
        await authenticates(runtime, client_id, secret + "x")

    # Reloading the page that showed it sends the same form again: refused, nothing made.
    again = await owner.post(room(project_id), data=fields)
    assert again.status_code == 409
    assert "already sent" in again.text
    assert secret not in again.text
    assert len(await apps.list_apps(runtime, project_id)) == 1

    # The list: name, client id, type, redirect URIs, scopes, date; never the secret.
    listing = await owner.get(room(project_id))
    assert f'href="{app_url(project_id, app.id)}">Partner portal</a>' in listing.text
    assert client_id in listing.text
    assert "Confidential" in listing.text
    assert CALLBACK in listing.text
    assert '<span class="tag">usage:read</span>' in listing.text
    assert "No OAuth apps yet." not in listing.text
    pages = [
        room(project_id),
        app_url(project_id, app.id),
        f"{app_url(project_id, app.id)}/rotate",
        f"{app_url(project_id, app.id)}/delete",
    ]
    for page in pages:
        text = (await owner.get(page)).text
        assert secret not in text, page
        assert secret.removeprefix("kgcs_")[-16:] not in text, page
    [event] = await audit_events(runtime, app.id)
    assert (event.action, event.project_id) == ("oauth.app_created", project_id)


async def test_a_public_app_has_no_secret(owner, project_id, runtime) -> None:
    made = await register(
        owner, project_id, name="Mobile", redirect_uris="com.example.app:/callback", public=True
    )
    assert made.status_code == 201
    assert SECRET.search(made.text) is None
    assert "kgcs_" not in made.text
    assert "A public app has no client secret" in made.text
    assert "shown only once" not in made.text
    [app] = await apps.list_apps(runtime, project_id)
    assert app.public
    assert CLIENT_ID.search(made.text).group(1) == app.client_id  # type: ignore[union-attr]
    # A public client authenticates with its id alone.
    public = presented_client(None, {"client_id": app.client_id})
    assert (await authenticate_client(runtime, public, client_ip=None)).public
    page = await owner.get(app_url(project_id, app.id))
    assert "Public" in page.text
    assert "/rotate" not in page.text  # nothing to rotate
    assert (await owner.get(f"{app_url(project_id, app.id)}/rotate")).status_code == 404
    token = csrf_of(page.text)
    rotate = await owner.post(f"{app_url(project_id, app.id)}/rotate", data={FIELD: token})
    assert rotate.status_code == 404


REFUSED_URIS = [
    ("http://example.com/cb", 1),  # plain http away from a loopback address
    (f"{CALLBACK}\nhttps://partner.example.com/cb#done", 2),  # a fragment
    (f"{CALLBACK}\nhttps://*.example.com/cb", 2),  # a wildcard
    ("javascript:alert(1)", 1),
]


async def test_a_refused_redirect_uri_is_shown_next_to_its_field_and_nothing_is_made(
    owner, project_id, runtime
) -> None:
    for typed, line in REFUSED_URIS:
        refused = await register(owner, project_id, redirect_uris=typed)
        assert refused.status_code == 422, typed
        error = re.search(r'<p class="error" id="e-redirect_uris">([^<]+)</p>', refused.text)
        assert error, typed
        assert error.group(1).startswith(f"Line {line}: “"), error.group(1)
        assert "cannot be a redirect URI" in error.group(1)
        assert 'aria-invalid="true"' in refused.text
        assert 'aria-describedby="h-redirect_uris e-redirect_uris"' in refused.text
        assert "Partner portal" in refused.text  # what was typed is kept
    # A domain pattern and a scope, each next to its own field.
    bad = await register(owner, project_id, allowed_domains="exa mple.com", scopes="Keys Read")
    assert bad.status_code == 422
    assert re.search(r'id="e-allowed_domains">Line 1: “exa mple.com” is not a domain', bad.text)
    assert re.search(r'id="e-scopes">Line 1: “Keys” is not a scope', bad.text)
    # More redirect URIs than an app may have: the list is at fault, not a line of it.
    many = "\n".join(f"https://partner.example.com/cb{n}" for n in range(21))
    too_many = await register(owner, project_id, redirect_uris=many)
    assert too_many.status_code == 422
    assert 'id="e-redirect_uris">Too many entries: at most 20.' in too_many.text
    # A confidential app with neither redirect URIs nor scopes: the service's refusal.
    empty = await register(owner, project_id, redirect_uris="", scopes="")
    assert empty.status_code == 422
    assert 'class="problem"' in empty.text
    assert "needs redirect URIs" in empty.text
    assert await apps.list_apps(runtime, project_id) == []


async def test_the_room_speaks_french(owner, project_id) -> None:
    french = {"Accept-Language": "fr-CA,fr;q=0.9"}
    await registered(owner, project_id)
    page = await owner.get(room(project_id), headers=french)
    assert "<h1>Applications OAuth</h1>" in page.text
    assert "Inscrire une application" in page.text
    assert "Confidentielle" in page.text
    assert re.search(r"\d{1,2} [a-zéû]+\.? \d{4}", page.text)  # e.g. « 6 déc. 2026 »
    shown = await owner.get(room(project_id), headers=french)
    bad = await owner.post(
        room(project_id),
        headers=french,
        data={
            FIELD: csrf_of(shown.text),
            **once_of(shown.text),
            **app_fields(redirect_uris="http://example.com/cb"),
        },
    )
    assert bad.status_code == 422
    assert "Ligne 1\u00a0: « http://example.com/cb » ne peut pas être une URI" in bad.text


async def test_saving_changes_only_what_changed_in_one_update(owner, project_id, runtime) -> None:
    app_id = await registered(owner, project_id, allowed_domains="Partner.Example.com")
    url = app_url(project_id, app_id)
    page = await owner.get(url)
    assert page.status_code == 200
    assert "<h1>Partner portal</h1>" in page.text
    assert 'data-copy="client-id"' in page.text
    assert "never shown again" in page.text
    assert ">Save<" in page.text
    before = await audit_count(runtime, app_id)

    # The form as shown, untouched: nothing changes, nothing is audited.
    view = await apps.get_app(runtime, project_id, app_id)
    assert view.allowed_domains == ("partner.example.com",)  # as the schema writes it
    assert ">partner.example.com</textarea>" in page.text
    untouched = app_fields(allowed_domains="partner.example.com")
    same = await post(owner, url, url, untouched)
    assert (same.status_code, same.headers["location"]) == (303, f"{url}?flash=oauth_app_unchanged")
    assert "Nothing changed." in (await owner.get(same.headers["location"])).text
    assert await audit_count(runtime, app_id) == before

    # Typed in another case, the same domain: still nothing to change.
    same = await post(owner, url, url, {**untouched, "allowed_domains": "PARTNER.example.com"})
    assert same.headers["location"] == f"{url}?flash=oauth_app_unchanged"
    assert await audit_count(runtime, app_id) == before

    # A new name and scopes (space-separated, as OAuth writes them): one update naming both.
    saved = await post(
        owner,
        url,
        url,
        {**untouched, "name": "Partner portal v2", "scopes": "keys:read usage:read"},
    )
    assert saved.headers["location"] == f"{url}?flash=oauth_app_saved"
    assert "Saved." in (await owner.get(saved.headers["location"])).text
    events = await audit_events(runtime, app_id)
    assert len(events) == before + 1
    assert (events[-1].action, events[-1].data["changed"]) == (
        "oauth.app_updated",
        ["name", "scopes"],
    )
    view = await apps.get_app(runtime, project_id, app_id)
    assert (view.name, view.scopes, view.redirect_uris) == (
        "Partner portal v2",
        ("keys:read", "usage:read"),
        (CALLBACK,),
    )

    # A refused value: shown next to its field, with what was typed; nothing changes.
    refused = await post(
        owner, url, url, {**untouched, "redirect_uris": f"{CALLBACK}\nhttps://x.example.com/#a"}
    )
    assert refused.status_code == 422
    assert re.search(r'id="e-redirect_uris">Line 2: ', refused.text)
    assert "https://x.example.com/#a" in refused.text
    assert (await apps.get_app(runtime, project_id, app_id)).redirect_uris == (CALLBACK,)
    assert len(await audit_events(runtime, app_id)) == before + 1


async def test_rotating_keeps_the_old_secret_working_during_the_grace_period(
    owner, project_id, runtime, clock: FrozenClock
) -> None:
    made = await register(owner, project_id)
    client_id = CLIENT_ID.search(made.text).group(1)  # type: ignore[union-attr]
    first = SECRET.search(made.text).group(1)  # type: ignore[union-attr]
    [app] = await apps.list_apps(runtime, project_id)
    url = app_url(project_id, app.id)
    assert f'href="{url}/rotate"' in (await owner.get(url)).text

    confirm = await owner.get(f"{url}/rotate")
    assert confirm.status_code == 200
    assert "grace period" in confirm.text
    assert '<option value="3600">One hour</option>' in confirm.text
    assert '<option value="86400" selected>' in confirm.text
    shown = await owner.get(f"{url}/rotate")
    fields = {FIELD: csrf_of(shown.text), **once_of(shown.text), "grace": "3600"}
    rotated = await owner.post(f"{url}/rotate", data=fields)
    assert rotated.status_code == 201
    assert rotated.headers["cache-control"] == "no-store"
    assert "The new client secret" in rotated.text
    assert "The previous secret keeps working until" in rotated.text
    second = SECRET.search(rotated.text).group(1)  # type: ignore[union-attr]
    assert second != first
    # Both work during the grace period...
    assert (await authenticates(runtime, client_id, first)).app_id == app.id
    assert (await authenticates(runtime, client_id, second)).app_id == app.id
    assert "previous secret is also accepted until" in (await owner.get(url)).text
    # ...reloading the page does not rotate it again...
    assert (await owner.post(f"{url}/rotate", data=fields)).status_code == 409
    assert (await authenticates(runtime, client_id, second)).app_id == app.id
    # ...and after it only the new one does.
    clock.advance(3601)
    assert (await sign_in(owner, ADMIN_EMAIL, ADMIN_PASSWORD)).status_code == 303  # idle
    with pytest.raises(InvalidClient):
        await authenticates(runtime, client_id, first)
    assert (await authenticates(runtime, client_id, second)).app_id == app.id

    # No grace: the old secret stops at once.
    now = await post(owner, f"{url}/rotate", f"{url}/rotate", {"grace": "0"})
    assert now.status_code == 201
    assert "The previous secret no longer works" in now.text
    third = SECRET.search(now.text).group(1)  # type: ignore[union-attr]
    with pytest.raises(InvalidClient):
        await authenticates(runtime, client_id, second)
    assert (await authenticates(runtime, client_id, third)).app_id == app.id
    for grace in ("999999999", "soon"):
        refused = await post(owner, f"{url}/rotate", f"{url}/rotate", {"grace": grace})
        assert refused.status_code == 400, grace
    assert [e.action for e in await audit_events(runtime, app.id)].count(
        "oauth.app_secret_rotated"
    ) == 2


async def test_deleting_an_app_says_its_tokens_are_revoked_and_ends_its_client(
    owner, project_id, runtime
) -> None:
    made = await register(owner, project_id)
    client_id = CLIENT_ID.search(made.text).group(1)  # type: ignore[union-attr]
    secret = SECRET.search(made.text).group(1)  # type: ignore[union-attr]
    [app] = await apps.list_apps(runtime, project_id)
    url = app_url(project_id, app.id)
    confirm = await owner.get(f"{url}/delete")
    assert confirm.status_code == 200
    assert "every access and refresh token it was given is revoked" in confirm.text
    assert "cannot be undone" in confirm.text
    gone = await post(owner, f"{url}/delete", f"{url}/delete", {})
    assert gone.headers["location"] == f"{room(project_id)}?flash=oauth_app_deleted"
    listing = await owner.get(gone.headers["location"])
    assert "Every token it was given is revoked." in listing.text
    assert "No OAuth apps yet." in listing.text
    assert (await owner.get(url)).status_code == 404
    with pytest.raises(NotFound):
        await apps.get_app(runtime, project_id, app.id)
    with pytest.raises(InvalidClient):
        await authenticates(runtime, client_id, secret)
    again = await owner.post(f"{url}/delete", data={FIELD: csrf_of(listing.text)})
    assert again.status_code == 404


async def test_a_form_without_its_csrf_token_is_refused(owner, project_id, runtime) -> None:
    app_id = await registered(owner, project_id)
    url = app_url(project_id, app_id)
    once = once_of((await owner.get(room(project_id))).text)
    forged = [
        (room(project_id), {**once, **app_fields("Forged")}),
        (url, app_fields("Forged")),
        (f"{url}/rotate", {**once_of((await owner.get(f"{url}/rotate")).text), "grace": "0"}),
        (f"{url}/delete", {}),
    ]
    for action, fields in forged:
        assert (await owner.post(action, data=fields)).status_code == 403, action
        wrong = await owner.post(action, data={FIELD: "forged", **fields})
        assert wrong.status_code == 403, action
    [app] = await apps.list_apps(runtime, project_id)
    assert app.name == "Partner portal"
    assert [e.action for e in await audit_events(runtime, app_id)] == ["oauth.app_created"]


@pytest.mark.parametrize("role", ["viewer", "developer"])
async def test_a_viewer_or_developer_sees_the_apps_but_changes_nothing(
    owner, runtime, browser, project_id, role
) -> None:
    app_id = await registered(owner, project_id)
    url = app_url(project_id, app_id)
    email = f"{role}@example.com"
    await join(runtime, browser, project_id, owner, email, role)
    async with browser() as member:
        assert (await sign_in(member, email, NEW_PASSWORD)).status_code == 303
        listing = await member.get(room(project_id))
        assert listing.status_code == 200
        assert "Partner portal" in listing.text
        assert "Register an app" not in listing.text
        assert 'name="once"' not in listing.text
        assert "Only an administrator or the owner" in listing.text
        page = await member.get(url)
        assert page.status_code == 200
        assert "your role does not let you change it" in page.text
        assert ">Save<" not in page.text
        assert f"{url}/rotate" not in page.text
        assert f"{url}/delete" not in page.text
        assert "disabled" in page.text
        for confirm in (f"{url}/rotate", f"{url}/delete"):
            assert (await member.get(confirm)).status_code == 403, confirm
        token = csrf_of(page.text)
        once = once_of((await owner.get(room(project_id))).text)
        attempts = [
            (room(project_id), {**once, **app_fields("Mine")}),
            (url, app_fields("Mine")),
            (f"{url}/rotate", {**once, "grace": "0"}),
            (f"{url}/delete", {}),
        ]
        for action, fields in attempts:
            refused = await member.post(action, data={FIELD: token, **fields})
            assert refused.status_code == 403, action
            assert "Your role in this project does not allow this change." in refused.text
    [app] = await apps.list_apps(runtime, project_id)
    assert app.name == "Partner portal"
    assert [e.action for e in await audit_events(runtime, app_id)] == ["oauth.app_created"]


async def test_another_projects_app_does_not_exist_here(
    owner, runtime, browser, project_id, root_headers
) -> None:
    made = await owner.post("/v1/projects", json={"name": "Private"}, headers=root_headers)
    private = made.json()["id"]
    spec = AppSpec("Theirs", False, (CALLBACK,), (), ("keys:read",))
    theirs = (await apps.create_app(runtime, private, spec, actor="test")).app
    token = csrf_of((await owner.get(room(project_id))).text)
    mine = app_url(project_id, theirs.id)
    for page in (mine, f"{mine}/rotate", f"{mine}/delete"):
        assert (await owner.get(page)).status_code == 404, page
    for action, fields in ((mine, app_fields("Taken")), (f"{mine}/delete", {})):
        hit = await owner.post(action, data={FIELD: token, **fields})
        assert hit.status_code == 404, action
    assert theirs.client_id not in (await owner.get(room(project_id))).text
    # A member of this project only: the other project's room does not exist for them.
    await join(runtime, browser, project_id, owner, "dev@example.com", "admin")
    async with browser() as admin:
        assert (await sign_in(admin, "dev@example.com", NEW_PASSWORD)).status_code == 303
        assert (await admin.get(room(private))).status_code == 404
        assert (await admin.get(app_url(private, theirs.id))).status_code == 404
    assert await apps.get_app(runtime, private, theirs.id) == theirs
