"""Key ids carry a keyed tag (issue 10, defect 7): every id Keyguard issues has one, an id
of another master key is refused before any look-up, and keys issued before the change
(16-character ids without a tag) keep working across restarts."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest
from sqlalchemy import String

from helpers import (
    POLL_SESSION,
    bearer,
    counted_queries,
    create_key,
    issue_legacy_key,
)
from keyguard.accounts.service import InitResult
from keyguard.app import create_asgi
from keyguard.audit.models import AuditEvent
from keyguard.clock import FrozenClock
from keyguard.crypto.keys import ROOT_PREFIX, IssuedKey, looks_like_key_id
from keyguard.crypto.request_signing import compute_signature
from keyguard.engine.credentials import extract_credentials
from keyguard.engine.facts import Credentials, RequestFacts
from keyguard.errors import InvalidKey
from keyguard.keys import service as keys
from keyguard.keys.models import ApiKey, KeyCertificate
from keyguard.restrictions import service as restrictions
from keyguard.runtime import Runtime
from keyguard.settings import Settings
from keyguard.uploads.models import UploadSession
from keyguard.usage.models import AnomalyClaim, KeyLastUse, KeyNetwork, UsageBucket

TAGGED_BODY = 18  # characters after `{prefix}_{environment}_`: 12 random + a 6-char tag
LEGACY_BODY = 16


def body(key_id: str) -> str:
    return key_id.split("_", 2)[2]


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


async def test_every_issued_id_carries_the_runtime_tag(
    client: httpx.AsyncClient, root_headers: dict[str, str], project_id: str, runtime: Runtime
) -> None:
    live = await create_key(client, root_headers, project_id)
    test = await create_key(client, root_headers, project_id, environment="test")
    r = await client.post(f"/v1/keys/{live['id']}/rotate", json={}, headers=root_headers)
    rotated = r.json()
    r = await client.post(f"/v1/keys/{test['id']}/regenerate", headers=root_headers)
    regenerated = r.json()
    root = (await client.post("/v1/root-keys", json={"name": "ci"}, headers=root_headers)).json()
    r = await client.post(f"/v1/root-keys/{root['id']}/rotate", json={}, headers=root_headers)
    root_rotated = r.json()
    assert regenerated["id"] == test["id"]  # a new secret, the same id
    for made in (live, test, rotated, regenerated, root, root_rotated):
        assert len(body(made["id"])) == TAGGED_BODY, made["id"]
        assert runtime.key_ids.admits(made["id"])
        assert looks_like_key_id(made["id"])
        assert made["key"].startswith(made["id"])
    for made in (live, rotated, regenerated):  # a rotated key works through its grace
        r = await client.post("/v1/keys/verify", json={"key": made["key"]}, headers=root_headers)
        assert r.json()["valid"] is True, (made["id"], r.text)
    for made in (root, root_rotated):
        assert (await client.get("/v1/root-keys", headers=bearer(made["key"]))).status_code == 200


async def test_a_key_of_another_master_key_is_refused_with_no_query(
    runtime: Runtime, admin: InitResult, tmp_path: Path, clock: FrozenClock
) -> None:
    issued = (
        await keys.create_key(
            runtime, admin.project.project.id, keys.KeySpec(name="a"), actor=admin.account.id
        )
    ).issued
    await runtime.engine.verify(Credentials(issued.id, issued.secret), RequestFacts())
    other = await Runtime.start(Settings(data_dir=tmp_path / "other"), clock=clock)
    try:
        # Even a row with that id and secret in the other database is never looked up:
        # the id's tag is not the other master key's.
        await _insert(other, issued, project_id=None)
        async with counted_queries(other) as queries:
            for credentials in (
                Credentials(issued.id, issued.secret),
                Credentials(issued.id, None),  # a signed request's bare id
            ):
                with pytest.raises(InvalidKey):
                    await other.engine.verify(credentials, RequestFacts())
        assert queries == []
    finally:
        await other.close()


async def _insert(rt: Runtime, issued: IssuedKey, *, project_id: str | None) -> None:
    """The row of ``issued``, written as the keys service writes rows."""
    async with rt.transaction() as db:
        row = keys._new_row(rt, issued, keys.KeySpec(name="old"), project_id, max_age_days=None)
        if project_id is None:
            row.is_root = True
        db.add(row)


async def test_keys_issued_before_the_tag_keep_working_after_a_restart(
    settings: Settings, runtime: Runtime, admin: InitResult, clock: FrozenClock
) -> None:
    project = admin.project.project
    old = issue_legacy_key(project.key_prefix, "live")
    old_root = issue_legacy_key(ROOT_PREFIX, "live")
    await _insert(runtime, old, project_id=project.id)
    await _insert(runtime, old_root, project_id=None)

    restarted = await Runtime.start(settings, clock=clock)
    transport = httpx.ASGITransport(app=create_asgi(restarted), client=("203.0.113.7", 50000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c:
            for headers in (
                bearer(old.key),
                {"X-API-Key": old.key},
                {"X-API-Key": b64(old.id), "X-API-Secret": b64(old.secret)},
                {"Authorization": f"ApiKey {b64(old.id + ':' + old.secret)}"},
            ):
                assert extract_credentials({k.lower(): v for k, v in headers.items()})
                r = await c.post("/v1/sessions", json=POLL_SESSION, headers=headers)
                assert r.status_code == 201, (headers, r.text)
            r = await c.get("/v1/root-keys", headers=bearer(old_root.key))
            assert r.status_code == 200, r.text
            r = await c.post("/v1/keys/verify", json={"key": old.key}, headers=bearer(old_root.key))
            assert (r.json()["valid"], r.json()["key_id"]) == (True, old.id)
            # A signed request with the old key's bare id.
            signing = await restrictions.set_signing_secret(restarted, old.id, actor="test")
            ts = str(int(clock.now()))
            raw = b'{"delivery_mode": "poll"}'
            r = await c.post(
                "/v1/sessions",
                content=raw,
                headers={
                    "Content-Type": "application/json",
                    "X-API-Key": old.id,
                    "X-APTR-Timestamp": ts,
                    "X-APTR-Signature": compute_signature(signing, "POST", "/v1/sessions", raw, ts),
                },
            )
            assert r.status_code == 201, r.text
        # An old-shaped id that never existed is still refused before any look-up.
        never = issue_legacy_key(project.key_prefix, "live")
        async with counted_queries(restarted) as queries:
            with pytest.raises(InvalidKey):
                await restarted.engine.verify(Credentials(never.id, never.secret), RequestFacts())
        assert queries == []
    finally:
        await restarted.close()


# Every column that holds a key id. Some are 40 characters wide (the usage tables), so the
# longest id (a 16-character prefix) must fit in 40.
KEY_ID_COLUMNS = [
    ApiKey.id,
    ApiKey.rotated_to,
    ApiKey.rotated_from,
    KeyCertificate.key_id,
    UploadSession.key_id,
    UsageBucket.key_id,
    KeyNetwork.key_id,
    AnomalyClaim.key_id,
    KeyLastUse.key_id,
    AuditEvent.target,
]


@pytest.mark.parametrize("column", KEY_ID_COLUMNS, ids=lambda c: f"{c.class_.__name__}.{c.key}")
def test_the_longest_key_id_fits_every_column_that_holds_one(column) -> None:
    longest = len("abcdefghijklmnop_live_") + TAGGED_BODY
    assert longest == 40
    column_type = column.property.columns[0].type
    assert isinstance(column_type, String)
    assert column_type.length is not None
    assert column_type.length >= longest
