"""Every bad input gets its problem+json error and changes nothing."""

from __future__ import annotations

import os

import pytest

from helpers import POLL_SESSION, bearer, counted_queries, counts, create_key
from keyguard.crypto.keys import KeyIdTagger

FOREIGN = KeyIdTagger(os.urandom(32))  # tags of another master key: forged ids


def forged_key(real: str, position: int) -> str:
    c = real[position]
    return real[:position] + ("b" if c != "b" else "c") + real[position + 1 :]


@pytest.fixture
async def key(client, root_headers, project_id):
    return await create_key(client, root_headers, project_id)


async def test_bad_checksum_is_refused_without_any_database_query(client, key, runtime):
    async with counted_queries(runtime) as statements:
        for position in (15, 40, len(key["key"]) - 1):
            r = await client.post(
                "/v1/sessions", json=POLL_SESSION, headers=bearer(forged_key(key["key"], position))
            )
            assert (r.status_code, r.json()["code"]) == (401, "invalid_key")
    assert statements == []


@pytest.mark.parametrize(
    "make_key",
    [
        pytest.param(lambda k, ids: "", id="empty"),
        pytest.param(lambda k, ids: "garbage", id="garbage"),
        pytest.param(lambda k, ids: k["key"][:-1], id="truncated"),
        pytest.param(lambda k, ids: k["key"] + "A", id="extended"),
        pytest.param(lambda k, ids: forged_key(k["key"], 30), id="wrong-checksum"),
        pytest.param(lambda k, ids: ids.issue("aptr", "live").key, id="unknown-id"),
        pytest.param(lambda k, ids: FOREIGN.issue("aptr", "live").key, id="forged-id-tag"),
        pytest.param(lambda k, ids: k["id"] + ids.issue("aptr", "live").secret, id="wrong-secret"),
        pytest.param(lambda k, ids: k["key"].replace("aptr_", "aptr_\u200b"), id="zero-width"),
    ],
)
async def test_bad_keys_are_401_invalid_key_and_change_nothing(client, key, runtime, make_key):
    before = await counts(runtime)
    # Sent as raw UTF-8 bytes: attackers are not limited to what a polite client encodes.
    raw = {"Authorization": ("Bearer " + make_key(key, runtime.key_ids)).encode()}
    r = await client.post("/v1/sessions", json=POLL_SESSION, headers=raw)
    assert r.status_code == 401
    assert r.json()["code"] in ("invalid_key", "credentials_missing")
    assert r.headers["content-type"] == "application/problem+json"
    assert key["secret"] not in r.text
    assert await counts(runtime) == before


async def test_wrong_secret_and_unknown_id_are_indistinguishable(client, key, runtime):
    wrong = await client.post(
        "/v1/sessions",
        json=POLL_SESSION,
        headers=bearer(key["id"] + runtime.key_ids.issue("aptr", "live").secret),
    )
    unknown = await client.post(
        "/v1/sessions", json=POLL_SESSION, headers=bearer(runtime.key_ids.issue("aptr", "live").key)
    )
    forged = await client.post(  # an id whose tag is another master key's
        "/v1/sessions", json=POLL_SESSION, headers=bearer(FOREIGN.issue("aptr", "live").key)
    )
    assert wrong.json() == unknown.json() == forged.json()
    assert wrong.status_code == unknown.status_code == forged.status_code


# A valid body is {"name": ..., "environment": ...}: each case below breaks it in one way.
OK = '"name": "ok", "environment": "live"'


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ('{"name": ', "application/json"),
        ("not json", "application/json"),
        ('{"name": 123, "environment": "live"}', "application/json"),
        ('{"name": "ok"}', "application/json"),
        ('{"name": "ok", "environment": null}', "application/json"),
        ('{"name": "ok", "environment": "prod"}', "application/json"),
        ('{"name": "ok", "environment": "LIVE"}', "application/json"),
        ('{"environment": "live"}', "application/json"),
        ("{" + OK + ', "unknown_field": 1}', "application/json"),
        ("{" + OK + ', "scopes": "read"}', "application/json"),
        ("{" + OK + ', "scopes": ["UPPER"]}', "application/json"),
        ("{" + OK + ', "expires_at": "2020-01-01T00:00:00Z"}', "application/json"),
        ("{" + OK + ', "expires_at": "2999-01-01T00:00:00"}', "application/json"),
        ("{" + OK + ', "expires_at": "yesterday"}', "application/json"),
        ("{" + OK + ', "rate_limit": {"limit": 0, "period_seconds": 1}}', "application/json"),
        ('{"name": "", "environment": "live"}', "application/json"),
        ('{"name": "   ", "environment": "live"}', "application/json"),
        ('{"name": "bad\\u0000name", "environment": "live"}', "application/json"),
        ('{"name": "bell\\u0007", "environment": "live"}', "application/json"),
        ('{"name": "rtl\\u202eevil", "environment": "live"}', "application/json"),
        ('{"name": "' + "x" * 201 + '", "environment": "live"}', "application/json"),
        ("{" + OK + ', "metadata": {"blob": "' + "x" * 5000 + '"}}', "application/json"),
        ("[{" + OK + "}]", "application/json"),
    ],
)
async def test_malformed_key_bodies_are_422_and_change_nothing(
    client, root_headers, project_id, runtime, body, content_type
):
    before = await counts(runtime)
    r = await client.post(
        f"/v1/projects/{project_id}/keys",
        content=body,
        headers=root_headers | {"Content-Type": content_type},
    )
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "validation_failed"
    assert r.headers["content-type"] == "application/problem+json"
    assert await counts(runtime) == before


async def test_the_body_those_cases_break_is_valid(client, root_headers, project_id):
    r = await client.post(
        f"/v1/projects/{project_id}/keys",
        content="{" + OK + "}",
        headers=root_headers | {"Content-Type": "application/json"},
    )
    assert r.status_code == 201, r.text


async def test_unicode_names_are_kept(client, root_headers, project_id):
    key = await create_key(client, root_headers, project_id, name="Clé de production 🔑 日本")
    assert key["name"] == "Clé de production 🔑 日本"


async def test_validation_errors_never_echo_the_input(client, key):
    r = await client.post(
        "/v1/sessions",
        json={"delivery_mode": "carrier-pigeon", "password": "hunter2-very-secret"},
        headers=bearer(key["key"]),
    )
    assert r.status_code == 422
    assert "hunter2-very-secret" not in r.text


async def test_oversized_body_is_413(client, root_headers, project_id, runtime):
    before = await counts(runtime)
    big = '{"name": "' + "x" * (2 * 1024 * 1024) + '", "environment": "live"}'
    r = await client.post(
        f"/v1/projects/{project_id}/keys",
        content=big,
        headers=root_headers | {"Content-Type": "application/json"},
    )
    assert (r.status_code, r.json()["code"]) == (413, "payload_too_large")
    assert await counts(runtime) == before


async def test_oversized_headers_are_431(client, key):
    r = await client.post(
        "/v1/sessions", json=POLL_SESSION, headers=bearer(key["key"]) | {"X-Junk": "x" * 20_000}
    )
    assert (r.status_code, r.json()["code"]) == (431, "headers_too_large")


async def test_oversized_credential_header_is_invalid_key(client):
    r = await client.post(
        "/v1/sessions", json=POLL_SESSION, headers={"Authorization": "Bearer " + "A" * 8000}
    )
    assert (r.status_code, r.json()["code"]) == (401, "invalid_key")


async def test_unknown_route_is_problem_json_404(client):
    r = await client.get("/v1/nope")
    assert (r.status_code, r.json()["code"]) == (404, "not_found")
    assert r.headers["content-type"] == "application/problem+json"


async def test_bad_pagination_is_422(client, root_headers, project_id):
    for params in ({"limit": 0}, {"limit": 1000}, {"cursor": "%%%"}, {"limit": "ten"}):
        r = await client.get(f"/v1/projects/{project_id}/keys", params=params, headers=root_headers)
        assert r.status_code == 422, params
        assert r.json()["code"] == "validation_failed"


async def test_bad_project_prefix_is_422(client, root_headers):
    for prefix in ("UPPER", "with_underscore", "1digit", "", "waytoolongprefix17"):
        r = await client.post(
            "/v1/projects", json={"name": "p", "key_prefix": prefix}, headers=root_headers
        )
        assert r.status_code == 422, prefix


URL_OR_BODY_CODES = {"validation_failed", "invalid_url", "https_required", "ssrf_blocked"}


async def test_session_bad_inputs_are_422(client, key):
    for body in (
        {"delivery_mode": "webhook"},
        {"delivery_mode": "webhook", "webhook_url": "not a url"},
        {"delivery_mode": "webhook", "webhook_url": "ftp://example.com/hook"},
        {"delivery_mode": "webhook", "webhook_url": "https://127.0.0.1/hook"},
        {"delivery_mode": "poll", "webhook_url": "https://example.com/hook"},
        {"delivery_mode": "poll", "password": "x" * 73},
        {"delivery_mode": "poll", "expires_in": 1},
    ):
        r = await client.post("/v1/sessions", json=body, headers=bearer(key["key"]))
        assert r.status_code == 422, (body, r.text)
        assert r.json()["code"] in URL_OR_BODY_CODES


@pytest.mark.parametrize("field", ["name", "scopes", "ip_allowlist", "allowed_domains"])
async def test_null_for_a_required_setting_is_422(client, key, root_headers, runtime, field):
    before = await counts(runtime)
    r = await client.patch(f"/v1/keys/{key['id']}", json={field: None}, headers=root_headers)
    assert (r.status_code, r.json()["code"]) == (422, "validation_failed")
    assert await counts(runtime) == before


async def test_null_removes_expiry_and_rate_limit(client, key, root_headers):
    r = await client.patch(
        f"/v1/keys/{key['id']}", json={"expires_at": None, "rate_limit": None}, headers=root_headers
    )
    assert r.status_code == 200
    assert (r.json()["expires_at"], r.json()["rate_limit"]) == (None, None)


async def test_forged_cursor_with_a_naive_timestamp_is_422(client, root_headers, project_id):
    import base64

    cursor = base64.urlsafe_b64encode(b"2026-01-01T00:00:00|x").decode()
    r = await client.get(
        f"/v1/projects/{project_id}/keys", params={"cursor": cursor}, headers=root_headers
    )
    assert (r.status_code, r.json()["code"]) == (422, "validation_failed")


async def test_absurdly_nested_json_is_422(client, root_headers, project_id):
    body = (
        '{"name": "x", "environment": "live", "metadata": '
        + '{"a": ' * 3000
        + "1"
        + "}" * 3000
        + "}"
    )
    r = await client.post(
        f"/v1/projects/{project_id}/keys",
        content=body,
        headers=root_headers | {"Content-Type": "application/json"},
    )
    assert (r.status_code, r.json()["code"]) == (422, "validation_failed")


async def test_the_root_key_prefix_is_reserved(client, root_headers):
    r = await client.post(
        "/v1/projects", json={"name": "p", "key_prefix": "kgroot"}, headers=root_headers
    )
    assert (r.status_code, r.json()["code"]) == (422, "validation_failed")


async def test_an_overflowing_expiry_is_422(client, root_headers, project_id):
    for value in ("9999-12-31T23:59:59-23:59", "9500-01-01T00:00:00Z"):
        r = await client.post(
            f"/v1/projects/{project_id}/keys",
            json={"name": "x", "environment": "live", "expires_at": value},
            headers=root_headers,
        )
        assert (r.status_code, r.json()["code"]) == (422, "validation_failed"), value


async def test_a_session_password_over_72_bytes_is_422_even_under_72_characters(client, key):
    r = await client.post(
        "/v1/sessions",
        json={"delivery_mode": "poll", "password": "é" * 72},
        headers=bearer(key["key"]),
    )
    assert (r.status_code, r.json()["code"]) == (422, "validation_failed")


async def test_responses_are_not_cacheable(client, root_headers, project_id):
    r = await client.post(
        f"/v1/projects/{project_id}/keys",
        json={"name": "x", "environment": "live"},
        headers=root_headers,
    )
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    assert (await client.post("/v1/projects", json={"name": "p"}, headers=root_headers)).headers[
        "cache-control"
    ] == "no-store"


async def test_only_photo_uploads_may_send_large_bodies(client, key):
    big = b"x" * (2 * 1024 * 1024)
    r = await client.request(
        "GET", "/v1/sessions/sess_whatever0000000", content=big, headers=bearer(key["key"])
    )
    assert (r.status_code, r.json()["code"]) == (413, "payload_too_large")


async def test_a_bare_unknown_id_never_makes_the_server_read_the_body(runtime):
    """Anyone can send a well-formed id: the body is read only for a key that can sign."""
    from keyguard.doors.authenticate import authenticate_scope
    from keyguard.errors import InvalidKey

    async def must_not_read() -> bytes:
        raise AssertionError("the body was read")

    unknown = runtime.key_ids.new_id("aptr", "live")  # a right tag, but no such key

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/sessions",
        "raw_path": b"/v1/sessions",
        "query_string": b"",
        "scheme": "https",
        "client": ("203.0.113.9", 4000),
        "headers": [(b"x-api-key", unknown.encode()), (b"x-aptr-signature", b"x")],
    }
    with pytest.raises(InvalidKey):
        await authenticate_scope(runtime.engine, scope, must_not_read, header_prefix="APTR")


@pytest.mark.parametrize(
    "path",
    [
        "/v1/keys/%00",
        "/v1/keys/%00/release",
        "/v1/projects/%00/audit",
        "/v1/projects/x/keys?cursor=%00",
        "/v1/audit/proofs/inclusion?seq=1&x=%00",
    ],
)
async def test_a_nul_in_the_path_or_query_is_a_clear_400(client, root_headers, path):
    """PostgreSQL refuses NUL in text: it used to surface as a 500 from inside a query."""
    for method in ("GET", "POST"):
        r = await client.request(method, path, headers=root_headers)
        assert r.status_code == 400, (method, path, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "nul_in_request"
