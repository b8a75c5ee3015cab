"""``keyguard gateway --openapi``: each operation's requirements, enforced per method and
path, with API keys (access tokens: test_openapi_tokens.py); and the identity headers
the upstream trusts, never taken from the client."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator, Callable

import pytest
from openapi_documents import minimal
from openapi_env import FORGED, IDENTITY, JWT, ROUTES, Env, open_env, problem, upstream_saw

from keyguard.gateway.openapi import route_table
from keyguard.gateway.routes import RouteTable
from keyguard.restrictions import service as restrictions


@pytest.fixture(scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    async with open_env(tmp_path_factory.mktemp("gateway-openapi")) as env:
        yield env


# ---- header smuggling: the upstream trusts these headers, so only the gateway sets them ----


@pytest.mark.parametrize("routes", [ROUTES, None], ids=["openapi", "no-document"])
async def test_forged_identity_headers_never_reach_the_upstream_with_a_key(
    env: Env, routes: RouteTable | None
) -> None:
    key, key_id = await env.key("banking/read")
    r = await env.send("GET", "/banking/", routes=routes, headers={"API-Key": key, **FORGED})
    seen = upstream_saw(r)
    assert seen["x-aptr-key-id"] == [key_id]
    assert seen["x-aptr-project-id"] == [env.project_id]
    assert seen["x-aptr-scopes"] == ["banking/read"]
    # A key has no subject and no OAuth client: none is forwarded, the client's least of all.
    assert "x-aptr-subject" not in seen
    assert "x-aptr-client-id" not in seen
    assert "forged" not in r.text
    assert "acct_admin" not in r.text


async def test_forged_identity_headers_never_reach_the_upstream_of_an_open_operation(
    env: Env,
) -> None:
    r = await env.send("GET", "/banking/apiDoc", headers=FORGED)
    seen = upstream_saw(r)
    assert IDENTITY.isdisjoint(seen)  # nobody was identified, so nobody is named
    assert "forged" not in r.text
    assert "acct_admin" not in r.text


# ---- per-operation requirements with API keys ----------------------------------------------


@pytest.mark.parametrize("path", ["/banking/apiDoc", "/banking/products"])
async def test_an_open_operation_passes_with_nothing(env: Env, path: str) -> None:
    r = await env.send("GET", path)
    assert r.json()["path"] == path


async def test_an_open_operation_passes_on_without_checking_or_forwarding_credentials(
    env: Env,
) -> None:
    key, _ = await env.key()
    for headers in ({"API-Key": key}, {"Authorization": f"Bearer {key}"}, {"API-Key": "junk"}):
        seen = upstream_saw(await env.send("GET", "/banking/apiDoc", headers=headers))
        assert IDENTITY.isdisjoint(seen)
        assert "api-key" not in seen
        assert "authorization" not in seen


@pytest.mark.parametrize(
    "headers",
    [
        lambda key: {"API-Key": key},
        lambda key: {"X-API-Key": key},
        lambda key: {"Authorization": f"Bearer {key}"},
    ],
)
async def test_a_key_only_operation_passes_with_a_key_in_any_form(
    env: Env, headers: Callable[[str], dict[str, str]]
) -> None:
    key, key_id = await env.key()
    seen = upstream_saw(await env.send("GET", "/banking/", headers=headers(key)))
    assert seen["x-aptr-key-id"] == [key_id]
    assert "api-key" not in seen
    assert "authorization" not in seen


async def test_a_key_only_operation_refuses_no_key_or_a_bad_one(env: Env) -> None:
    assert problem(await env.send("GET", "/banking/")) == (401, "credentials_missing")
    r = await env.send("GET", "/banking/", headers={"API-Key": "junk"})
    assert problem(r) == (401, "invalid_key")
    assert r.headers["www-authenticate"] == 'Bearer realm="keyguard"'
    # An access token is not what this operation asks for.
    r = await env.send("GET", "/banking/", headers={"Authorization": f"Bearer {JWT}"})
    assert problem(r) == (401, "credentials_missing")


async def test_refused_requests_never_reach_the_upstream(env: Env) -> None:
    key, _ = await env.key()
    before = env.upstream_calls
    for method, path, headers in (
        ("GET", "/banking/", {}),
        ("GET", "/banking/accounts", {"API-Key": key}),  # needs a token too
        ("GET", "/banking/accounts/mine", {"API-Key": key}),  # needs a token only
        ("GET", "/banking/nowhere", {"API-Key": key}),
        ("PUT", "/banking/accounts", {"API-Key": key}),
    ):
        r = await env.send(method, path, headers=headers)
        assert r.status_code in (401, 404), (path, r.text)
    assert env.upstream_calls == before


async def test_an_operation_needing_a_token_refuses_a_key_alone(env: Env) -> None:
    key, _ = await env.key("banking/read")
    for path in ("/banking/accounts/mine", "/banking/accounts/ca34f402"):
        r = await env.send("GET", path, headers={"API-Key": key})
        assert problem(r) == (401, "credentials_missing"), path


async def test_an_operation_needing_both_refuses_a_key_alone(env: Env) -> None:
    key, _ = await env.key("banking/read")
    r = await env.send("GET", "/banking/accounts", headers={"API-Key": key})
    assert problem(r) == (401, "credentials_missing")


async def test_a_token_that_does_not_verify_is_refused_beside_a_good_key(env: Env) -> None:
    key, _ = await env.key()
    r = await env.send(
        "GET", "/banking/accounts", headers={"API-Key": key, "Authorization": f"Bearer {JWT}"}
    )
    status, code = problem(r)
    # invalid_key until the OAuth feature plugs its verifier in, then its own code.
    assert (status, code in ("invalid_key", "invalid_token")) == (401, True), code


async def test_either_alternative_may_pass(env: Env) -> None:
    key, key_id = await env.key()
    seen = upstream_saw(await env.send("GET", "/banking/status", headers={"API-Key": key}))
    assert seen["x-aptr-key-id"] == [key_id]


async def test_key_scopes_listed_by_an_api_key_requirement_are_required(env: Env) -> None:
    routes = route_table(minimal({"/docs": {"get": {"security": [{"key": ["banking/docs"]}]}}}))
    without, _ = await env.key()
    r = await env.send("GET", "/docs", routes=routes, headers={"API-Key": without})
    assert problem(r) == (403, "scope_missing")
    with_scope, _ = await env.key("banking/docs")
    r = await env.send("GET", "/docs", routes=routes, headers={"API-Key": with_scope})
    assert r.status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/banking/nowhere"),
        ("PUT", "/banking/accounts"),
        ("HEAD", "/banking/"),
        ("GET", "/accounts"),  # without the base path
        ("GET", "/banking/accounts/a%2Fb"),
    ],
)
async def test_an_operation_the_document_does_not_declare_is_404(
    env: Env, method: str, path: str
) -> None:
    key, _ = await env.key()
    r = await env.send(method, path, headers={"API-Key": key})
    assert r.status_code == 404
    if method != "HEAD":
        assert problem(r) == (404, "operation_not_declared")


async def test_an_undeclared_operation_is_refused_before_credentials_are_looked_at(
    env: Env,
) -> None:
    # The same answer with or without a key: the refusal says nothing about the caller.
    assert problem(await env.send("GET", "/banking/nowhere")) == (404, "operation_not_declared")


async def test_a_path_that_could_leave_the_upstream_is_still_400_first(env: Env) -> None:
    r = await env.send("GET", "/banking/%2e%2e/admin")
    assert problem(r) == (400, "invalid_path")


async def test_a_rate_limited_key_gets_its_headers_through_an_operation(env: Env) -> None:
    key, _ = await env.key(rate_limit=(50, 60))
    r = await env.send("GET", "/banking/status", headers={"API-Key": key})
    assert r.status_code == 200
    assert r.headers["ratelimit-limit"] == "50"
    assert r.headers["ratelimit-remaining"] == "49"


async def test_without_a_document_every_path_needs_a_key_as_before(env: Env) -> None:
    r = await env.send("GET", "/banking/apiDoc", routes=None)
    assert problem(r) == (401, "credentials_missing")
    key, key_id = await env.key()
    r = await env.send("GET", "/anything/at/all", routes=None, headers={"API-Key": key})
    assert upstream_saw(r)["x-aptr-key-id"] == [key_id]


async def test_a_signed_request_is_checked_over_the_body_it_forwards(env: Env) -> None:
    routes = route_table(minimal({"/upload": {"post": {"security": [{"key": []}]}}}))
    _, key_id = await env.key()
    secret = await restrictions.set_signing_secret(env.runtime, key_id, actor="test")
    body = b'{"photo": 1}'
    ts = str(int(env.runtime.clock.now()))
    digest = hmac.new(secret.encode(), b"POST/upload" + body + ts.encode(), hashlib.sha256)
    signed = {
        "X-API-Key": key_id,  # the public id alone: a signed request
        "X-APTR-Timestamp": ts,
        "X-APTR-Signature": "sha256=" + digest.hexdigest(),
    }
    r = await env.send("POST", "/upload", routes=routes, headers=signed, content=body)
    assert upstream_saw(r)["x-aptr-key-id"] == [key_id]
    assert r.json()["body"] == body.decode()  # read for the check, then forwarded whole
    r = await env.send("POST", "/upload", routes=routes, headers=signed, content=b"{}")
    assert problem(r) == (401, "signature_invalid")
