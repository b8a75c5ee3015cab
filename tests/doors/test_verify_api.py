"""Door 2: POST /v1/keys/verify (CONTRACT §5)."""

from __future__ import annotations

from helpers import create_key
from keyguard.crypto.keys import KeyIdTagger


async def verify(client, root_headers, **body):
    r = await client.post("/v1/keys/verify", json=body, headers=root_headers)
    assert r.status_code == 200, r.text
    return r.json()


async def test_valid_key_is_described(client, root_headers, project_id):
    key = await create_key(client, root_headers, project_id, scopes=["b", "a"], environment="test")
    out = await verify(client, root_headers, key=key["key"])
    assert out == {
        "valid": True,
        "code": None,
        "key_id": key["id"],
        "project_id": project_id,
        "scopes": ["a", "b"],
        "environment": "test",
        "token_id": None,
        "client_id": None,
        "subject": None,
        "ratelimit": None,
    }


async def test_each_refusal_has_its_code(client, root_headers, project_id, runtime):
    key = await create_key(client, root_headers, project_id, scopes=["read"])
    revoked = await create_key(client, root_headers, project_id)
    await client.delete(f"/v1/keys/{revoked['id']}", headers=root_headers)
    cases = {
        "garbage": "invalid_key",
        runtime.key_ids.issue("aptr", "live").key: "invalid_key",  # unknown id
        KeyIdTagger(bytes(32)).issue("aptr", "live").key: "invalid_key",  # forged id tag
        revoked["key"]: "key_revoked",
    }
    for presented, code in cases.items():
        out = await verify(client, root_headers, key=presented)
        assert (out["valid"], out["code"]) == (False, code)
        assert out["key_id"] is None
    out = await verify(client, root_headers, key=key["key"], required_scopes=["write"])
    assert (out["valid"], out["code"]) == (False, "scope_missing")


async def test_verify_needs_a_root_key(client, root_headers, project_id):
    key = await create_key(client, root_headers, project_id)
    r = await client.post(
        "/v1/keys/verify",
        json={"key": key["key"]},
        headers={"Authorization": f"Bearer {key['key']}"},
    )
    assert (r.status_code, r.json()["code"]) == (403, "root_key_required")
    r = await client.post("/v1/keys/verify", json={"key": key["key"]})
    assert r.status_code == 401


async def test_verify_rejects_malformed_requests(client, root_headers):
    for body in ({}, {"key": 5}, {"key": "x", "extra": 1}, {"key": "x", "body_base64": "%%"}):
        r = await client.post("/v1/keys/verify", json=body, headers=root_headers)
        assert (r.status_code, r.json()["code"]) == (422, "validation_failed"), body


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


async def test_all_four_presentation_forms_work_through_forwarded_headers(
    client, root_headers, project_id
):
    key = await create_key(client, root_headers, project_id)
    forms = [
        {"Authorization": f"Bearer {key['key']}"},
        {"API-Key": key["key"]},
        {"X-API-Key": key["key"]},
        {"x-api-key": _b64(key["id"]), "x-api-secret": _b64(key["secret"])},
        {"Authorization": f"ApiKey {_b64(key['id'] + ':' + key['secret'])}"},
    ]
    for headers in forms:
        out = await verify(client, root_headers, headers=headers)
        assert (out["valid"], out["key_id"]) == (True, key["id"]), headers


async def test_forwarded_headers_without_a_key_are_credentials_missing(client, root_headers):
    out = await verify(client, root_headers, headers={"Accept": "*/*"})
    assert (out["valid"], out["code"]) == (False, "credentials_missing")


async def test_key_and_headers_are_mutually_exclusive(client, root_headers, project_id):
    key = await create_key(client, root_headers, project_id)
    for body in ({}, {"key": key["key"], "headers": {"API-Key": key["key"]}}):
        r = await client.post("/v1/keys/verify", json=body, headers=root_headers)
        assert (r.status_code, r.json()["code"]) == (422, "validation_failed")
