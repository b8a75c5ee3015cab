"""Abuse a review of the authorization server asked about: locking a client out with its
public id, a flood of forged key ids, a partner app reading the project's other apps, a
person who left the project still holding tokens, and codes or refresh tokens raced."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest

from keyguard.oauth.clients import FAILURES
from keyguard.oauth.errors import InvalidToken
from oauth_helpers import REDIRECT, access_token, basic, code_for, probe, register_app

TOKEN = "/oauth/token"
READ = "keyguard:read"


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- A client id is public: it must not be a lock anyone can trip ----------------------


async def test_failed_guesses_from_elsewhere_do_not_lock_out_the_real_client(client, browser, app):
    """client_id is public (it is in every authorization URL). An attacker at another
    address sending FAILURES wrong secrets must not stop the real client, holding the
    right secret, from getting tokens (RFC 9700 §2.5 asks for client authentication,
    not for a lock anyone can trip)."""
    async with browser() as attacker:
        for _ in range(FAILURES):
            wrong = await attacker.post(
                TOKEN,
                data={"grant_type": "client_credentials"},
                headers=basic(app.app.client_id, "kgcs_wrong"),
            )
            assert wrong.status_code == 401
    real = await client.post(
        TOKEN,
        data={"grant_type": "client_credentials"},
        headers=basic(app.app.client_id, app.client_secret),
    )
    assert real.status_code == 200, real.text


async def test_failed_guesses_do_not_lock_out_a_public_apps_users(
    runtime, client, browser, person, project_id, pkce
):
    """A public app (an SPA or a native app) has no secret at all: anyone can send a
    bogus client_secret with its client_id and, after FAILURES tries, every user of the
    app is refused at the token endpoint (code exchange and refresh) for WINDOW seconds."""
    spa = await register_app(runtime, project_id, public=True, scopes=("read",))
    async with browser() as attacker:
        for _ in range(FAILURES):
            await attacker.post(
                TOKEN,
                data={
                    "grant_type": "client_credentials",
                    "client_id": spa.app.client_id,
                    "client_secret": "x",
                },
            )
    code = await code_for(person, spa.app.client_id, pkce[1])
    exchanged = await client.post(
        TOKEN,
        data={
            "grant_type": "authorization_code",
            "client_id": spa.app.client_id,
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": pkce[0],
        },
    )
    assert exchanged.status_code == 200, exchanged.text


# --- Forged key ids: one reload for a burst, not one each ------------------------------


async def test_a_burst_of_unknown_kids_reloads_the_keys_at_most_once(runtime, clock, monkeypatch):
    """N concurrent forged tokens (no credential needed, any door) must not cost N
    database reads: callers queued behind a reload find the keys fresh."""
    keys = runtime.oauth.keys
    applied = 0
    real_apply = keys._apply

    def counting_apply(rows, now):
        nonlocal applied
        applied += 1
        real_apply(rows, now)

    monkeypatch.setattr(keys, "_apply", counting_apply)
    clock.advance(2)  # past UNKNOWN_KID_RELOAD, short of RELOAD_EVERY
    forged = [
        ".".join(
            (_b64({"alg": "ES256", "typ": "at+jwt", "kid": f"sk_forged{i}"}), _b64({}), "AAAA")
        )
        for i in range(25)
    ]

    async def one(token: str) -> None:
        with pytest.raises(InvalidToken):
            await runtime.oauth.tokens.verify(token, now=clock.now())

    await asyncio.gather(*(one(t) for t in forged))
    assert applied <= 1, f"{applied} reloads for one burst of unknown kids"


# --- Apps are never delegated, not even to read them -----------------------------------


async def test_a_persons_read_token_cannot_read_the_projects_oauth_apps(
    runtime, client, admin, project_id
):
    """A partner app holding keyguard:read must not enumerate the project's other apps
    (client ids, redirect URIs, domains, scopes): the apps room is never delegated."""
    delegated = await register_app(runtime, project_id, scopes=(READ,))
    await register_app(runtime, project_id, name="Internal admin console", scopes=("admin",))
    token = await access_token(
        runtime, project_id=project_id, app=delegated, subject=admin.account.id, scopes=(READ,)
    )
    answer = await client.get(f"/v1/projects/{project_id}/oauth-apps", headers=_bearer(token))
    assert answer.status_code == 403, answer.text
    assert answer.json()["code"] == "root_key_required"


# --- A person who leaves the project takes their tokens' access with them -------------


async def test_a_removed_persons_token_stops_at_the_projects_doors(
    runtime, client, browser, person, admin, project_id, root_headers
):
    """Removing a member revokes what they let apps do in the project: their tokens are
    refused at once by every door (not only the management door, which asks for the
    membership of today), and their refresh tokens end."""
    from sqlalchemy import select

    from account_pages import join
    from keyguard.accounts import members
    from keyguard.accounts.models import Account
    from keyguard.engine.principals import UserPrincipal

    await join(runtime, browser, project_id, person, "leaver@example.com", "developer")
    async with runtime.sessions() as db:
        leaver = (
            await db.execute(select(Account.id).where(Account.email == "leaver@example.com"))
        ).scalar_one()
    app = await register_app(runtime, project_id, scopes=("read",))
    token = await access_token(
        runtime, project_id=project_id, app=app, subject=leaver, scopes=("read",)
    )
    assert (await probe(client, token)).status_code == 404  # works while a member
    owner = UserPrincipal(admin.account.id, "session", roles={project_id: "owner"})
    await members.remove(runtime, owner, project_id, leaver)
    refused = await probe(client, token)
    assert (refused.status_code, refused.json()["code"]) == (401, "token_revoked")
    verified = await client.post("/v1/keys/verify", json={"token": token}, headers=root_headers)
    assert verified.json()["valid"] is False, verified.json()


# --- Races: two requests at once on one code / one refresh token ----------------------


async def _exchange(client, app, code, verifier):
    return await client.post(
        TOKEN,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
        headers=basic(app.app.client_id, app.client_secret),
    )


async def test_one_code_exchanged_twice_at_once(client, person, app, pkce):
    code = await code_for(person, app.app.client_id, pkce[1])
    answers = await asyncio.gather(*(_exchange(client, app, code, pkce[0]) for _ in range(4)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200, 400, 400, 400], [a.text for a in answers]


async def test_one_refresh_token_used_twice_at_once(client, person, app, pkce):
    code = await code_for(person, app.app.client_id, pkce[1])
    first = await _exchange(client, app, code, pkce[0])
    refresh = first.json()["refresh_token"]

    async def use():
        return await client.post(
            TOKEN,
            data={"grant_type": "refresh_token", "refresh_token": refresh},
            headers=basic(app.app.client_id, app.client_secret),
        )

    answers = await asyncio.gather(*(use() for _ in range(4)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(200) <= 1, statuses
    assert all(s < 500 for s in statuses), [a.text for a in answers]
