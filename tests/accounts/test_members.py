"""Project members: owners invite by a single-use, expiring link, change roles and remove
people; other roles see and change nothing they may not; open sign-up proves the email
first and never tells who has an account."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from account_pages import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    NEW_PASSWORD,
    csrf_of,
    invite,
    join,
    last_link,
    sign_in,
    submit,
)
from keyguard.accounts.members import INVITATION_DAYS, INVITES_PER_ADDRESS
from keyguard.accounts.models import Account, Membership
from keyguard.mail.models import MailMessage
from keyguard.runtime import Runtime
from keyguard.wire import SESSION_COOKIE


@pytest.fixture
async def owner(client, admin) -> httpx.AsyncClient:
    assert (await sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)).status_code == 303
    return client


async def test_an_invited_person_creates_an_account_and_joins_with_the_role(
    owner, runtime, browser, project_id
):
    sent = await invite(owner, project_id, "dev@example.com", "developer")
    assert sent.headers["location"].endswith("flash=members_changed")
    link = await last_link(runtime, "dev@example.com", "/invitations")
    async with browser() as other:
        page = await other.get(link)
        assert page.status_code == 200
        assert "Join the project Default project as Developer" in page.text
        weak = await submit(other, link, link, {"password": "password1234"})
        assert weak.status_code == 422
        joined = await submit(other, link, link, {"password": NEW_PASSWORD})
        assert joined.headers["location"] == "/projects?flash=invitation_accepted"
        assert SESSION_COOKIE in other.cookies
        projects = await other.get("/projects")
        assert "Default project" in projects.text
        assert "Developer" in projects.text
    async with runtime.sessions() as db:
        member = (
            await db.execute(
                select(Membership)
                .join(Account, Account.id == Membership.account_id)
                .where(Account.email == "dev@example.com")
            )
        ).scalar_one()
    assert member.role == "developer"
    members = await owner.get(f"/projects/{project_id}/members")
    assert "dev@example.com" in members.text


async def test_an_invitation_link_works_once(owner, runtime, browser, project_id):
    link = await join(runtime, browser, project_id, owner, "once@example.com", "viewer")
    async with browser() as other:
        assert (await other.get(link)).status_code == 410
        token = csrf_of((await other.get("/login")).text)
        again = await other.post(link, data={"csrf_token": token, "password": NEW_PASSWORD})
        assert again.status_code == 410


async def test_an_invitation_link_expires(owner, runtime, browser, project_id, clock):
    await invite(owner, project_id, "late@example.com", "viewer")
    link = await last_link(runtime, "late@example.com", "/invitations")
    clock.advance(INVITATION_DAYS * 86400 + 1)
    async with browser() as other:
        assert (await other.get(link)).status_code == 410
    async with runtime.sessions() as db:
        found = await db.execute(select(Account).where(Account.email == "late@example.com"))
        assert found.first() is None


async def test_an_invitation_never_sets_the_password_of_an_existing_account(
    owner, runtime, browser, project_id, root_headers, clock
):
    await join(runtime, browser, project_id, owner, "twice@example.com", "viewer")
    # A second project's owner invites the same person: the link must not reset anything.
    async with runtime.sessions() as db:
        before = (
            await db.execute(select(Account).where(Account.email == "twice@example.com"))
        ).scalar_one()
    second = await owner.post("/v1/projects", json={"name": "Second"}, headers=root_headers)
    assert second.status_code == 201, second.text
    second_id = second.json()["id"]
    clock.advance(1)  # so that the newest email is this one
    await invite(owner, second_id, "twice@example.com", "developer")
    link = await last_link(runtime, "twice@example.com", "/invitations")
    async with browser() as other:
        page = await other.get(link)
        assert "already has a Keyguard account" in page.text
        # The page offers no password form; a forged POST is refused all the same.
        token = csrf_of((await other.get("/login")).text)
        forged = {"csrf_token": token, "password": "attacker chosen phrase"}
        refused = await other.post(link, data=forged)
        assert refused.status_code == 409
        assert (await sign_in(other, "twice@example.com", NEW_PASSWORD)).status_code == 303
        accepted = await submit(other, link, link, {})
        assert accepted.headers["location"] == "/projects?flash=invitation_accepted"
    async with runtime.sessions() as db:
        after = (
            await db.execute(select(Account).where(Account.email == "twice@example.com"))
        ).scalar_one()
        roles = (
            await db.execute(select(Membership.role).where(Membership.account_id == after.id))
        ).scalars()
        assert sorted(roles) == ["developer", "viewer"]
    assert after.password_hash == before.password_hash


async def test_a_viewer_sees_members_but_cannot_change_anything(
    owner, runtime, browser, project_id
):
    await join(runtime, browser, project_id, owner, "viewer@example.com", "viewer")
    async with browser() as viewer:
        assert (await sign_in(viewer, "viewer@example.com", NEW_PASSWORD)).status_code == 303
        page = await viewer.get(f"/projects/{project_id}/members")
        assert page.status_code == 200
        assert "only owners manage members" in page.text
        assert "/members/invite" not in page.text
        refused = await invite(viewer, project_id, "friend@example.com", "owner")
        assert refused.status_code == 403
        async with runtime.sessions() as db:
            admin_id = (
                await db.execute(select(Account.id).where(Account.email == ADMIN_EMAIL))
            ).scalar_one()
        token = csrf_of(page.text)
        demote = await viewer.post(
            f"/projects/{project_id}/members/{admin_id}/role",
            data={"csrf_token": token, "role": "viewer"},
        )
        assert demote.status_code == 403
    async with runtime.sessions() as db:
        roles = (await db.execute(select(Membership.role))).scalars().all()
    assert sorted(roles) == ["owner", "viewer"]


async def test_a_project_you_are_not_a_member_of_does_not_exist(
    owner, browser, runtime, project_id, root_headers
):
    await join(runtime, browser, project_id, owner, "x@example.com", "viewer")
    other_project = await owner.post("/v1/projects", json={"name": "Private"}, headers=root_headers)
    private_id = other_project.json()["id"]
    async with browser() as stranger:
        assert (await sign_in(stranger, "x@example.com", NEW_PASSWORD)).status_code == 303
        hidden = await stranger.get(f"/projects/{private_id}/members")
        missing = await stranger.get("/projects/proj_doesnotexist/members")
        assert hidden.status_code == missing.status_code == 404
        refused = await invite(stranger, project_id, "y@example.com", "viewer")
        assert refused.status_code == 403


async def test_owners_change_roles_and_remove_but_never_the_last_owner(
    owner, runtime, browser, project_id
):
    await join(runtime, browser, project_id, owner, "dev@example.com", "developer")
    async with runtime.sessions() as db:
        ids = dict((await db.execute(select(Account.email, Account.id))).all())
    page = await owner.get(f"/projects/{project_id}/members")
    token = csrf_of(page.text)
    demote_self = await owner.post(
        f"/projects/{project_id}/members/{ids[ADMIN_EMAIL]}/role",
        data={"csrf_token": token, "role": "admin"},
    )
    assert demote_self.status_code == 409
    assert "at least one owner" in demote_self.text
    promoted = await owner.post(
        f"/projects/{project_id}/members/{ids['dev@example.com']}/role",
        data={"csrf_token": token, "role": "admin"},
    )
    assert promoted.status_code == 303
    bad_role = await owner.post(
        f"/projects/{project_id}/members/{ids['dev@example.com']}/role",
        data={"csrf_token": token, "role": "superuser"},
    )
    assert bad_role.status_code == 422
    removed = await owner.post(
        f"/projects/{project_id}/members/{ids['dev@example.com']}/remove",
        data={"csrf_token": token},
    )
    assert removed.status_code == 303
    async with browser() as gone:
        assert (await sign_in(gone, "dev@example.com", NEW_PASSWORD)).status_code == 303
        assert (await gone.get(f"/projects/{project_id}/members")).status_code == 404


async def test_sign_up_is_closed_unless_configured(client, admin):
    assert (await client.get("/signup")).status_code == 404


@pytest.fixture
def open_signup(runtime: Runtime) -> Runtime:
    runtime.settings.signup = "open"
    return runtime


async def test_open_sign_up_proves_the_email_and_never_tells_who_has_an_account(
    client, admin, open_signup, browser
):
    runtime = open_signup
    taken = await submit(client, "/signup", "/signup", {"email": ADMIN_EMAIL})
    fresh = await submit(client, "/signup", "/signup", {"email": "new@example.com"})
    assert taken.status_code == fresh.status_code == 303
    assert taken.headers["location"] == fresh.headers["location"] == "/signup?flash=signup_sent"
    async with runtime.sessions() as db:
        accounts = (await db.execute(select(Account.email))).scalars().all()
    assert "new@example.com" not in accounts  # nothing exists before the link is used
    link = await last_link(runtime, "new@example.com", "/signup")
    async with browser() as other:
        done = await submit(other, link, link, {"password": NEW_PASSWORD})
        assert done.headers["location"] == "/projects?flash=signed_up"
        assert SESSION_COOKIE in other.cookies
    async with browser() as other:
        assert (await other.get(link)).status_code == 410
    async with runtime.sessions() as db:
        body = (
            await db.execute(select(MailMessage.body).where(MailMessage.to_address == ADMIN_EMAIL))
        ).scalar_one()
    assert "already has one" in body


async def test_invitations_cannot_flood_a_mailbox(owner, runtime, project_id):
    answers = [
        (await invite(owner, project_id, "victim@example.org", "viewer")).status_code
        for _ in range(INVITES_PER_ADDRESS[0] + 2)
    ]
    assert answers[: INVITES_PER_ADDRESS[0]] == [303] * INVITES_PER_ADDRESS[0]
    assert answers[INVITES_PER_ADDRESS[0] :] == [429, 429]
    async with runtime.sessions() as db:
        sent = (
            await db.execute(
                select(MailMessage.id).where(MailMessage.to_address == "victim@example.org")
            )
        ).all()
    assert len(sent) == INVITES_PER_ADDRESS[0]


@pytest.mark.parametrize(
    "address",
    [
        "victim@example.org,attacker@evil.example",
        "(comment)a@example.org",
        "=?utf-8?q?x?=@example.org",
        "a@[example.org",
        "<a@example.org>",
        '"quoted"@example.org',
        "a@example",
    ],
)
async def test_an_invitation_goes_to_one_plain_address_or_nowhere(
    owner, runtime, project_id, address
):
    refused = await invite(owner, project_id, address, "viewer")
    assert refused.status_code == 422
    assert "valid email address" in refused.text
    async with runtime.sessions() as db:
        assert (await db.execute(select(MailMessage))).first() is None


async def test_membership_changes_are_in_the_projects_audit_log(
    owner, runtime, browser, project_id, root_headers
):
    await join(runtime, browser, project_id, owner, "dev@example.com", "developer")
    log = await owner.get(f"/v1/projects/{project_id}/audit", headers=root_headers)
    actions = [event["action"] for event in log.json()["data"]]
    assert {"project.member_invited", "project.member_joined"} <= set(actions)
