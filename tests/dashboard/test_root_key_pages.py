"""Settings > Root Keys: administrators only (a project's owner who is not one gets the
404 page), a new key shown once, and the last active root key kept."""

from __future__ import annotations

import re

from sqlalchemy import select, update

from account_pages import NEW_PASSWORD, csrf_of, join, once_of, sign_in
from keyguard.accounts.models import Account, Membership
from keyguard.keys.models import ApiKey
from keyguard.web.csrf import FIELD

ROOT_KEYS = "/settings/root-keys"
KEY = re.compile(r'<code id="new-key">([^<]+)</code>')


async def test_an_administrator_creates_a_root_key_shown_once(owner, runtime) -> None:
    page = await owner.get(ROOT_KEYS)
    assert page.status_code == 200
    made = await owner.post(
        ROOT_KEYS, data={FIELD: csrf_of(page.text), **once_of(page.text), "name": "CI deploys"}
    )
    assert made.status_code == 201
    assert made.headers["cache-control"] == "no-store"
    found = KEY.search(made.text)
    assert found
    key = found.group(1)
    listed = await owner.get(ROOT_KEYS)
    assert "CI deploys" in listed.text
    assert key not in listed.text
    works = await owner.get("/v1/root-keys", headers={"Authorization": f"Bearer {key}"})
    assert works.status_code == 200
    resent = await owner.post(
        ROOT_KEYS, data={FIELD: csrf_of(page.text), **once_of(page.text), "name": "CI deploys"}
    )
    assert resent.status_code == 409  # a reload does not make a second root key
    empty = await owner.post(
        ROOT_KEYS, data={FIELD: csrf_of(listed.text), **once_of(listed.text), "name": ""}
    )
    assert empty.status_code == 422


async def test_revoking_asks_first_and_keeps_the_last_one(owner, runtime, admin) -> None:
    page = await owner.get(ROOT_KEYS)
    made = await owner.post(
        ROOT_KEYS, data={FIELD: csrf_of(page.text), **once_of(page.text), "name": "spare"}
    )
    spare = KEY.search(made.text)
    assert spare
    async with runtime.sessions() as db:
        spare_id = (await db.execute(select(ApiKey.id).where(ApiKey.name == "spare"))).scalar_one()
    confirm = await owner.get(f"{ROOT_KEYS}/{spare_id}/revoke")
    assert confirm.status_code == 200
    revoked = await owner.post(
        f"{ROOT_KEYS}/{spare_id}/revoke", data={FIELD: csrf_of(confirm.text)}
    )
    assert revoked.headers["location"] == f"{ROOT_KEYS}?flash=root_key_revoked"
    refused = await owner.get(
        "/v1/root-keys", headers={"Authorization": f"Bearer {spare.group(1)}"}
    )
    assert refused.status_code == 401
    last = admin.root_key.issued.id
    kept = await owner.post(f"{ROOT_KEYS}/{last}/revoke", data={FIELD: csrf_of(confirm.text)})
    assert kept.status_code == 409
    assert "last active root key" in kept.text


async def test_a_project_owner_who_is_no_administrator_finds_nothing(
    owner, runtime, browser, project_id
) -> None:
    await join(runtime, browser, project_id, owner, "owner2@example.com", "owner")
    async with runtime.transaction() as db:
        account_id = (
            await db.execute(select(Account.id).where(Account.email == "owner2@example.com"))
        ).scalar_one()
        role = (
            await db.execute(select(Membership.role).where(Membership.account_id == account_id))
        ).scalar_one()
        assert role == "owner"
        await db.execute(update(Account).where(Account.id == account_id).values(is_admin=False))
    async with browser() as other:
        assert (await sign_in(other, "owner2@example.com", NEW_PASSWORD)).status_code == 303
        assert (await other.get(ROOT_KEYS)).status_code == 404
        token = csrf_of((await other.get("/projects")).text)
        refused = await other.post(ROOT_KEYS, data={FIELD: token, "name": "mine"})
        assert refused.status_code == 404
        nav = await other.get("/projects")
        assert ROOT_KEYS not in nav.text
    async with runtime.sessions() as db:
        names = (await db.execute(select(ApiKey.name).where(ApiKey.is_root.is_(True)))).scalars()
        assert "mine" not in list(names)


async def test_a_root_key_needs_a_recent_sign_in(owner, clock) -> None:
    page = await owner.get(ROOT_KEYS)
    token = csrf_of(page.text)
    clock.advance(16 * 60)  # past the 10-minute re-authentication window, session alive
    stale = await owner.post(ROOT_KEYS, data={FIELD: token, "name": "with a stolen cookie"})
    assert stale.status_code == 303
    assert stale.headers["location"].startswith("/account/reauth?next=/settings/root-keys")
    assert (await owner.get(ROOT_KEYS)).headers["location"].startswith("/account/reauth")
