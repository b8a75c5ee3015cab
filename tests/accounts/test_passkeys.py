"""Passkeys: adding one needs a fresh sign-in, signing in with one needs no password, and
every replayed, foreign, cloned or mismatched answer is refused and changes nothing."""

from __future__ import annotations

import json

import httpx
import pytest
from sqlalchemy import select

from account_pages import ADMIN_EMAIL, ADMIN_PASSWORD, add_passkey, begin, csrf_of, sign_in
from keyguard.accounts.models import AccountSession, Passkey
from keyguard.audit.models import AuditEvent
from keyguard.runtime import Runtime
from keyguard.web.csrf import FIELD
from keyguard.wire import SESSION_COOKIE
from soft_authenticator import SoftAuthenticator


async def passkey_sign_in(
    client: httpx.AsyncClient, authenticator: SoftAuthenticator, **kw
) -> tuple[httpx.Response, str]:
    token, options = await begin(client, "/login", "/login/passkey/options")
    assert options.status_code == 200, options.text
    credential = authenticator.get(options.json(), **kw)
    done = await client.post("/login/passkey", data={FIELD: token, "credential": credential})
    return done, credential


async def sign_out(client: httpx.AsyncClient) -> None:
    page = await client.get("/account/security")
    await client.post("/logout", data={FIELD: csrf_of(page.text)})
    assert SESSION_COOKIE not in client.cookies


@pytest.fixture
async def signed_in(client, admin) -> httpx.AsyncClient:
    assert (await sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)).status_code == 303
    return client


async def test_add_a_passkey_then_sign_in_with_it_and_no_password(signed_in, runtime: Runtime):
    client, authenticator = signed_in, SoftAuthenticator()
    added = await add_passkey(client, authenticator)
    assert added.headers["location"] == "/account/security?flash=passkey_added"
    page = await client.get("/account/security?flash=passkey_added")
    assert "Work laptop" in page.text
    assert "The passkey was added" in page.text
    await sign_out(client)

    done, _ = await passkey_sign_in(client, authenticator)
    assert done.status_code == 303
    assert done.headers["location"] == "/account"
    assert SESSION_COOKIE in client.cookies
    async with runtime.sessions() as db:
        methods = (await db.execute(select(AccountSession.method))).scalars().all()
        passkey = (await db.execute(select(Passkey))).scalar_one()
        actions = (await db.execute(select(AuditEvent.action))).scalars().all()
    assert methods.count("passkey") == 1
    assert passkey.sign_count == authenticator.sign_count
    assert passkey.last_used_at is not None
    assert "account.passkey_added" in actions


async def test_a_replayed_assertion_is_refused(signed_in, runtime: Runtime):
    client, authenticator = signed_in, SoftAuthenticator()
    await add_passkey(client, authenticator)
    await sign_out(client)
    done, credential = await passkey_sign_in(client, authenticator)
    assert done.status_code == 303
    await sign_out(client)

    token = csrf_of((await client.get("/login")).text)
    replay = await client.post("/login/passkey", data={FIELD: token, "credential": credential})
    assert replay.status_code == 401
    assert "That passkey could not sign you in" in replay.text
    assert SESSION_COOKIE not in client.cookies


async def test_an_assertion_made_for_another_origin_is_refused(signed_in):
    client, authenticator = signed_in, SoftAuthenticator()
    await add_passkey(client, authenticator)
    await sign_out(client)
    # A look-alike site relayed our challenge to the person's authenticator.
    done, _ = await passkey_sign_in(client, authenticator, origin="https://keyguard.example.net")
    assert done.status_code == 401
    assert SESSION_COOKIE not in client.cookies


async def test_a_registration_for_another_origin_or_rp_is_refused(signed_in, runtime: Runtime):
    client = signed_in
    foreign_origin = await add_passkey(client, SoftAuthenticator(), origin="https://evil.example")
    assert foreign_origin.status_code == 401
    foreign_rp = await add_passkey(client, SoftAuthenticator(), rp_id="evil.example")
    assert foreign_rp.status_code == 401
    async with runtime.sessions() as db:
        assert (await db.execute(select(Passkey))).first() is None


async def test_a_registration_answer_is_accepted_once(signed_in, runtime: Runtime):
    client, authenticator = signed_in, SoftAuthenticator()
    token, options = await begin(client, "/account/security", "/account/passkeys/options")
    credential = authenticator.create(options.json())
    fields = {FIELD: token, "name": "Laptop", "credential": credential}
    assert (await client.post("/account/passkeys", data=fields)).status_code == 303
    again = await client.post("/account/passkeys", data=fields)
    assert again.status_code == 401
    assert "The passkey request expired" in again.text
    async with runtime.sessions() as db:
        assert len((await db.execute(select(Passkey))).all()) == 1


async def test_a_cloned_authenticator_whose_count_goes_back_is_refused(signed_in, runtime):
    client, authenticator = signed_in, SoftAuthenticator()
    await add_passkey(client, authenticator)
    await sign_out(client)
    clone = SoftAuthenticator(
        key=authenticator.key,
        credential_id=authenticator.credential_id,
        user_handle=authenticator.user_handle,
        sign_count=authenticator.sign_count,
    )
    assert (await passkey_sign_in(client, authenticator))[0].status_code == 303
    await sign_out(client)
    done, _ = await passkey_sign_in(client, clone)  # same count the original already used
    assert done.status_code == 401
    async with runtime.sessions() as db:
        failed = select(AuditEvent.data).where(AuditEvent.action == "account.sign_in_failed")
        reasons = [data["reason"] for data in (await db.execute(failed)).scalars()]
    assert reasons == ["passkey"]


async def test_an_authenticator_that_never_counts_still_signs_in(signed_in):
    client, authenticator = signed_in, SoftAuthenticator(counts=False)
    await add_passkey(client, authenticator)
    await sign_out(client)
    assert (await passkey_sign_in(client, authenticator))[0].status_code == 303
    await sign_out(client)
    assert (await passkey_sign_in(client, authenticator))[0].status_code == 303


async def test_user_verification_is_required(signed_in):
    client, authenticator = signed_in, SoftAuthenticator()
    await add_passkey(client, authenticator)
    await sign_out(client)
    done, _ = await passkey_sign_in(client, authenticator, user_verified=False)
    assert done.status_code == 401


async def test_a_user_handle_of_another_account_is_refused(signed_in):
    client, authenticator = signed_in, SoftAuthenticator()
    await add_passkey(client, authenticator)
    await sign_out(client)
    done, _ = await passkey_sign_in(client, authenticator, user_handle=b"acct_someone_else")
    assert done.status_code == 401


async def test_adding_a_passkey_needs_a_recent_sign_in(signed_in, clock, runtime):
    client = signed_in
    clock.advance(runtime.settings.reauth_minutes * 60 + 1)
    _, options = await begin(client, "/account/security", "/account/passkeys/options")
    assert options.status_code == 403
    assert options.json()["redirect"] == "/account/reauth?next=/account/security"


async def test_rename_and_remove_and_a_removed_passkey_signs_nobody_in(signed_in, runtime):
    client, authenticator = signed_in, SoftAuthenticator()
    await add_passkey(client, authenticator)
    async with runtime.sessions() as db:
        passkey_id = (await db.execute(select(Passkey.id))).scalar_one()
    token = csrf_of((await client.get("/account/security")).text)
    bad = await client.post(
        f"/account/passkeys/{passkey_id}/rename", data={FIELD: token, "name": "\x00"}
    )
    assert bad.status_code == 422
    assert "printable characters" in bad.text
    renamed = await client.post(
        f"/account/passkeys/{passkey_id}/rename", data={FIELD: token, "name": "Phone"}
    )
    assert renamed.headers["location"] == "/account/security?flash=passkey_renamed"
    assert "Phone" in (await client.get("/account/security")).text
    removed = await client.post(f"/account/passkeys/{passkey_id}/remove", data={FIELD: token})
    assert removed.headers["location"] == "/account/security?flash=passkey_removed"
    gone = await client.post(f"/account/passkeys/{passkey_id}/remove", data={FIELD: token})
    assert gone.status_code == 404
    await sign_out(client)
    assert (await passkey_sign_in(client, authenticator))[0].status_code == 401
    async with runtime.sessions() as db:
        actions = (await db.execute(select(AuditEvent.action))).scalars().all()
    assert {"account.passkey_renamed", "account.passkey_removed"} <= set(actions)


async def test_passkey_forms_need_their_csrf_token(signed_in):
    client = signed_in
    refused = await client.post("/account/passkeys/options", data={"name": "x"})
    assert refused.status_code == 403
    refused = await client.post("/login/passkey/options", data={})
    assert refused.status_code == 403


async def test_garbage_credentials_are_refused_cleanly(signed_in):
    client = signed_in
    await sign_out(client)
    token = csrf_of((await client.get("/login")).text)
    for garbage in ("", "{}", "not json", json.dumps({"id": "x", "response": {}}), "[]"):
        done = await client.post("/login/passkey", data={FIELD: token, "credential": garbage})
        assert done.status_code == 401, garbage
