"""Root keys have a lifecycle (CONTRACT §3; issue 10, defect 5): made, listed without a
secret, revoked at once, rotated with a grace period, never all gone, all audited; and
``keyguard root-key create`` on the data dir is the way back in."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import httpx
from sqlalchemy import select

from helpers import bearer, create_key
from keyguard.app import create_asgi
from keyguard.audit.models import AuditEvent
from keyguard.runtime import Runtime
from keyguard.settings import Settings


async def test_a_second_root_key_is_made_listed_and_works(client, root_headers, runtime):
    made = await client.post("/v1/root-keys", json={"name": "ci"}, headers=root_headers)
    assert made.status_code == 201, made.text
    key = made.json()["key"]
    assert key.startswith("kgroot_live_")
    listed = await client.get("/v1/root-keys", headers=bearer(key))
    assert listed.status_code == 200
    assert {k["name"] for k in listed.json()} == {"root", "ci"}
    assert key not in listed.text
    assert all(k["active"] for k in listed.json())


async def test_a_revoked_root_key_is_refused_at_once_and_the_last_one_stays(
    client, root_headers, admin, runtime
):
    made = (await client.post("/v1/root-keys", json={"name": "ci"}, headers=root_headers)).json()
    gone = await client.delete(f"/v1/root-keys/{made['id']}", headers=root_headers)
    assert gone.status_code == 204
    refused = await client.get("/v1/root-keys", headers=bearer(made["key"]))
    assert refused.status_code == 401
    first_id = admin.root_key.key.id
    last = await client.delete(f"/v1/root-keys/{first_id}", headers=root_headers)
    assert (last.status_code, last.json()["code"]) == (409, "last_root_key")
    assert (await client.get("/v1/root-keys", headers=root_headers)).status_code == 200
    async with runtime.sessions() as db:
        actions = (await db.execute(select(AuditEvent.action))).scalars().all()
    assert {"root_key.created", "root_key.revoked"} <= set(actions)


async def test_a_rotated_root_key_works_through_its_grace_period(
    client, root_headers, admin, clock
):
    first_id = admin.root_key.key.id
    rotated = await client.post(
        f"/v1/root-keys/{first_id}/rotate", json={"grace_seconds": 60}, headers=root_headers
    )
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()
    assert new["rotated_from"] == first_id
    assert (await client.get("/v1/root-keys", headers=root_headers)).status_code == 200
    clock.advance(61)
    assert (await client.get("/v1/root-keys", headers=root_headers)).status_code == 401
    assert (await client.get("/v1/root-keys", headers=bearer(new["key"]))).status_code == 200
    # The old one is expired now: the new one is the last active, and stays.
    last = await client.delete(f"/v1/root-keys/{new['id']}", headers=bearer(new["key"]))
    assert last.json()["code"] == "last_root_key"


async def test_project_keys_and_people_cannot_manage_root_keys(client, root_headers, project_id):
    key = await create_key(client, root_headers, project_id)
    refused = await client.get("/v1/root-keys", headers=bearer(key["key"]))
    assert refused.status_code in (401, 403)
    bad = await client.post("/v1/root-keys", json={"name": ""}, headers=root_headers)
    assert bad.status_code == 422


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keyguard.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_root_key_create_offline_is_the_way_back_in(tmp_path):
    data = str(tmp_path / "data")
    init = await asyncio.to_thread(
        cli, "init", "--email", "ops@example.com", "--password", "a long enough password",
        "--json", "--data", data,
    )  # fmt: skip
    assert init.returncode == 0, init.stderr
    made = await asyncio.to_thread(
        cli, "root-key", "create", "--name", "recovery", "--json", "--data", data
    )
    assert made.returncode == 0, made.stderr
    out = json.loads(made.stdout)
    assert out["key"].startswith("kgroot_live_")
    runtime = await Runtime.start(Settings(data_dir=tmp_path / "data"))
    try:
        transport = httpx.ASGITransport(app=create_asgi(runtime))
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c:
            listed = await c.get("/v1/root-keys", headers=bearer(out["key"]))
        assert listed.status_code == 200
        assert "recovery" in {k["name"] for k in listed.json()}
    finally:
        await runtime.close()
    missing = await asyncio.to_thread(
        cli, "root-key", "create", "--name", "x", "--data", str(tmp_path / "none")
    )
    assert missing.returncode == 2
