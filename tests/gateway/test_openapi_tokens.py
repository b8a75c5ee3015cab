"""``keyguard gateway --openapi`` with real access tokens from the real issuer: token-only
operations, scopes, operations needing a key and a token of one project, and what the
upstream is told of a token's caller."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from openapi_env import FORGED, Env, open_env, problem, upstream_saw

from keyguard.projects import service as projects
from oauth_helpers import access_token, register_app


@pytest.fixture(scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    async with open_env(tmp_path_factory.mktemp("gateway-openapi-tokens")) as env:
        yield env


async def person_token(env: Env, *scopes: str, project_id: str | None = None) -> str:
    """A token an app got for the admin (a person: it has a subject)."""
    return await access_token(
        env.runtime,
        project_id=project_id or env.project_id,
        scopes=scopes,
        subject=env.account_id,
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_token_only_operation_passes_and_the_upstream_learns_who_called(
    env: Env,
) -> None:
    app = await register_app(env.runtime, env.project_id, scopes=("banking/read", "b/x"))
    token = await access_token(
        env.runtime,
        project_id=env.project_id,
        scopes=("banking/read", "b/x"),
        subject=env.account_id,
        app=app,
    )
    r = await env.send("GET", "/banking/accounts/mine", headers={**bearer(token), **FORGED})
    seen = upstream_saw(r)
    assert seen["x-aptr-subject"] == [env.account_id]
    assert seen["x-aptr-client-id"] == [app.app.client_id]
    assert seen["x-aptr-project-id"] == [env.project_id]
    assert seen["x-aptr-scopes"] == ["b/x banking/read"]  # sorted, space-separated
    assert "x-aptr-key-id" not in seen  # no key was presented
    assert "authorization" not in seen  # the token stays at the gateway
    assert "forged" not in r.text
    assert "acct_admin" not in r.text


async def test_a_client_credentials_token_has_no_subject_to_forward(env: Env) -> None:
    token = await access_token(env.runtime, project_id=env.project_id, scopes=("banking/read",))
    seen = upstream_saw(
        await env.send("GET", "/banking/accounts/ca34f402", headers={**bearer(token), **FORGED})
    )
    assert "x-aptr-subject" not in seen  # the client's forged copy is dropped too
    assert len(seen["x-aptr-client-id"]) == 1
    assert seen["x-aptr-client-id"] != ["forged-client"]


async def test_a_missing_scope_is_403(env: Env) -> None:
    token = await person_token(env, "banking/write")
    r = await env.send("GET", "/banking/accounts/mine", headers=bearer(token))
    assert problem(r) == (403, "scope_missing")


async def test_every_scope_an_alternative_lists_is_needed(env: Env) -> None:
    key, _ = await env.key()
    token = await person_token(env, "banking/write")  # DELETE also needs banking/admin
    r = await env.send(
        "DELETE", "/banking/accounts/ca34f402", headers={**bearer(token), "API-Key": key}
    )
    assert problem(r) == (403, "scope_missing")


async def test_an_operation_needing_both_refuses_a_token_alone(env: Env) -> None:
    token = await person_token(env, "banking/read")
    r = await env.send("GET", "/banking/accounts", headers=bearer(token))
    assert problem(r) == (401, "credentials_missing")


async def test_an_operation_needing_both_refuses_a_key_alone(env: Env) -> None:
    key, _ = await env.key()
    r = await env.send("GET", "/banking/accounts", headers={"X-API-Key": key})
    assert problem(r) == (401, "credentials_missing")


async def test_a_key_and_a_token_of_one_project_pass_together(env: Env) -> None:
    key, key_id = await env.key("app:scope")
    token = await person_token(env, "banking/read")
    for key_header in ("API-Key", "X-API-Key"):
        r = await env.send("GET", "/banking/accounts", headers={**bearer(token), key_header: key})
        seen = upstream_saw(r)
        assert seen["x-aptr-key-id"] == [key_id]
        assert seen["x-aptr-subject"] == [env.account_id]
        assert seen["x-aptr-project-id"] == [env.project_id]
        assert seen["x-aptr-scopes"] == ["banking/read"]  # the token's: what the person granted
        assert key_header.lower() not in seen


async def test_a_key_and_a_token_of_different_projects_are_refused(env: Env) -> None:
    other = await projects.create_project(
        env.runtime, name="Other", key_prefix=None, actor="test", owner=None
    )
    key, _ = await env.key()
    token = await access_token(env.runtime, project_id=other.project.id, scopes=("banking/read",))
    before = env.upstream_calls
    r = await env.send("GET", "/banking/accounts", headers={**bearer(token), "API-Key": key})
    assert problem(r) == (403, "token_project_mismatch")
    assert env.upstream_calls == before


async def test_a_key_only_operation_refuses_a_token_alone(env: Env) -> None:
    token = await person_token(env, "banking/read")
    r = await env.send("GET", "/banking/", headers=bearer(token))
    assert problem(r) == (401, "credentials_missing")


async def test_the_first_alternative_presented_is_the_one_checked(env: Env) -> None:
    """/status: a key, or else a token. Both sent: the key is checked, and its refusal is
    the answer even though the token would pass."""
    key, key_id = await env.key()
    token = await person_token(env)
    seen = upstream_saw(await env.send("GET", "/banking/status", headers=bearer(token)))
    assert seen["x-aptr-subject"] == [env.account_id]
    both = {**bearer(token), "API-Key": key}
    seen = upstream_saw(await env.send("GET", "/banking/status", headers=both))
    assert seen["x-aptr-key-id"] == [key_id]
    assert "x-aptr-subject" not in seen  # the token was not what was checked
    bad_key = {**bearer(token), "API-Key": key[:-4] + "AAAA"}
    assert problem(await env.send("GET", "/banking/status", headers=bad_key))[0] == 401


async def test_an_undeclared_operation_is_404_for_a_token_too(env: Env) -> None:
    token = await person_token(env, "banking/read")
    r = await env.send("PATCH", "/banking/accounts/mine", headers=bearer(token))
    assert problem(r) == (404, "operation_not_declared")


async def test_an_open_operation_passes_with_nothing_and_names_nobody(env: Env) -> None:
    token = await person_token(env, "banking/read")
    for headers in ({}, bearer(token)):
        seen = upstream_saw(await env.send("GET", "/banking/apiDoc", headers=headers))
        assert "x-aptr-subject" not in seen
        assert "authorization" not in seen


async def test_without_a_document_a_token_caller_is_forwarded_as_one(env: Env) -> None:
    token = await person_token(env, "banking/read")
    seen = upstream_saw(
        await env.send("GET", "/anything", routes=None, headers={**bearer(token), **FORGED})
    )
    assert seen["x-aptr-subject"] == [env.account_id]
    assert seen["x-aptr-scopes"] == ["banking/read"]
    assert "x-aptr-key-id" not in seen
