"""Forged key ids cost no database query, at any door and in any presentation form
(issue 10, defect 7).

The checksum is public CRC32, so anyone can mint checksum-valid keys. A new id carries a
keyed tag that only Keyguard can compute, and an old (untagged) id must be one that existed
when the runtime started: anything else is ``invalid_key`` before the cache, and so before
any look-up. Counted here with a listener on every statement the database runs.
"""

from __future__ import annotations

import base64
import json
import secrets

import httpx
import pytest
from door_harness import DOORS, PREFIX, Kit, Req

from helpers import counted_queries
from keyguard.crypto.keys import ALPHABET, IssuedKey, new_secret_for
from keyguard.crypto.request_signing import compute_signature


def _random(n: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(n))


def _with_checksum(key_id: str) -> IssuedKey:
    """``key_id`` with a secret whose public CRC32 checksum is right: what anyone can mint."""
    return IssuedKey(key_id, new_secret_for(key_id))


def never_issued_old_id() -> IssuedKey:
    """An id of the old shape (16 characters, no tag) that no key ever had."""
    return _with_checksum(f"aptr_live_{_random(16)}")


def wrong_tag(real_id: str) -> IssuedKey:
    """A real id with another tag (its last 6 characters), a new one each time."""
    tag = real_id[-6:]
    while tag == real_id[-6:]:
        tag = _random(6)
    return _with_checksum(real_id[:-6] + tag)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


FORMS = {
    "bearer": lambda k: {"Authorization": f"Bearer {k.key}"},
    "x-api-key": lambda k: {"X-API-Key": k.key},
    "api-key": lambda k: {"API-Key": k.key},
    "id+secret": lambda k: {"X-API-Key": b64(k.id), "X-API-Secret": b64(k.secret)},
    "apikey-scheme": lambda k: {"Authorization": f"ApiKey {b64(k.id + ':' + k.secret)}"},
}


@pytest.fixture(scope="module")
async def real_id(kit: Kit) -> str:
    """A key that exists, verified once at every door so every cache holds what it needs
    (the root key the verify API is called with, the key itself)."""
    issued = await kit.key()
    for door in DOORS:
        out = await kit.call(door, Req({"Authorization": f"Bearer {issued.key}"}))
        assert out.code is None, (door, out.text)
    return issued.id


async def _verify_api(kit: Kit, headers: dict[str, str]) -> str | None:
    """``POST /v1/keys/verify`` with the request's headers forwarded (every form)."""
    transport = httpx.ASGITransport(app=kit.apps["sessions"], client=("192.0.2.1", 1))
    async with httpx.AsyncClient(transport=transport, base_url="https://door") as client:
        r = await client.post(
            "/v1/keys/verify",
            content=json.dumps({"headers": headers, "ip": "198.51.100.7", "https": True}),
            headers={
                "Authorization": f"Bearer {kit.root_key}",
                "Content-Type": "application/json",
            },
        )
    assert r.status_code == 200, r.text
    code: str | None = r.json()["code"]
    return code


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("forge", ["never-issued-old-id", "wrong-tag"])
async def test_a_forged_key_is_refused_with_no_query(
    kit: Kit, real_id: str, door: str, form: str, forge: str
) -> None:
    forged = never_issued_old_id() if forge == "never-issued-old-id" else wrong_tag(real_id)
    headers = FORMS[form](forged)
    async with counted_queries(kit.runtime) as queries:
        out = await kit.call(door, Req(headers))
        forwarded = await _verify_api(kit, headers) if door == "verify" else "invalid_key"
    assert (out.status, out.code, forwarded) == (401, "invalid_key", "invalid_key"), out.text
    assert queries == []


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("forge", ["never-issued-old-id", "wrong-tag"])
async def test_a_signed_request_with_a_forged_bare_id_is_refused_with_no_query(
    kit: Kit, real_id: str, door: str, forge: str
) -> None:
    forged = never_issued_old_id() if forge == "never-issued-old-id" else wrong_tag(real_id)
    ts = str(int(kit.clock.now()))
    signature = compute_signature(_random(32), "POST", "/v1/sessions", b"", ts)
    headers = {
        "X-API-Key": forged.id,
        f"X-{PREFIX}-Timestamp": ts,
        f"X-{PREFIX}-Signature": signature,
    }
    async with counted_queries(kit.runtime) as queries:
        out = await kit.call(door, Req(headers, body=b""))
    assert (out.status, out.code) == (401, "invalid_key"), out.text
    assert queries == []


async def test_the_count_sees_the_look_up_of_a_real_key(kit: Kit) -> None:
    """The control: a key not yet in the cache is looked up, and the listener sees it."""
    issued = await kit.key()
    async with counted_queries(kit.runtime) as queries:
        out = await kit.call("middleware", Req({"Authorization": f"Bearer {issued.key}"}))
    assert out.code is None, out.text
    assert any("api_keys" in statement for statement in queries)
