"""Every key lifecycle event lands in the hash-chained audit log (CONTRACT §10)."""

from __future__ import annotations

from sqlalchemy import update

from helpers import create_key
from keyguard.audit.models import AuditEvent
from keyguard.audit.service import verify_chain


async def test_key_lifecycle_is_audited_in_order(client, root_headers, project_id):
    key = await create_key(client, root_headers, project_id)
    await client.patch(f"/v1/keys/{key['id']}", json={"name": "n2"}, headers=root_headers)
    await client.patch(
        f"/v1/keys/{key['id']}", json={"ip_allowlist": ["10.0.0.0/8"]}, headers=root_headers
    )
    await client.post(f"/v1/keys/{key['id']}/regenerate", headers=root_headers)
    rotated = (await client.post(f"/v1/keys/{key['id']}/rotate", headers=root_headers)).json()
    await client.delete(f"/v1/keys/{rotated['id']}", headers=root_headers)
    r = await client.get(f"/v1/projects/{project_id}/audit", headers=root_headers)
    assert r.status_code == 200
    actions = [(e["action"], e["target"]) for e in r.json()["data"]]
    assert actions[-6:] == [
        ("key.created", key["id"]),
        ("key.updated", key["id"]),
        ("key.restrictions_changed", key["id"]),
        ("key.regenerated", key["id"]),
        ("key.rotated", key["id"]),
        ("key.revoked", rotated["id"]),
    ]
    assert key["secret"] not in r.text
    assert rotated["secret"] not in r.text


async def test_audit_page_chains_hashes(client, root_headers, project_id):
    await create_key(client, root_headers, project_id)
    events = (await client.get(f"/v1/projects/{project_id}/audit", headers=root_headers)).json()[
        "data"
    ]
    assert all(len(e["hash"]) == 64 for e in events)


async def test_untouched_chain_verifies(runtime, admin, client, root_headers, project_id):
    await create_key(client, root_headers, project_id)
    async with runtime.sessions() as session:
        assert await verify_chain(session) == []


async def test_an_edited_row_breaks_the_chain(runtime, admin, client, root_headers, project_id):
    key = await create_key(client, root_headers, project_id)
    await client.delete(f"/v1/keys/{key['id']}", headers=root_headers)
    async with runtime.sessions.begin() as session:
        await session.execute(
            update(AuditEvent)
            .where(AuditEvent.action == "key.revoked")
            .values(actor="someone-else")
        )
    async with runtime.sessions() as session:
        breaks = await verify_chain(session)
    assert [b.reason for b in breaks] == ["event content does not match its hash"]


async def test_a_deleted_row_breaks_the_chain(runtime, admin, client, root_headers, project_id):
    from sqlalchemy import delete

    key = await create_key(client, root_headers, project_id)
    await client.delete(f"/v1/keys/{key['id']}", headers=root_headers)
    async with runtime.sessions.begin() as session:
        await session.execute(delete(AuditEvent).where(AuditEvent.action == "key.created"))
    async with runtime.sessions() as session:
        assert await verify_chain(session)


async def test_audit_of_unknown_project_is_404(client, root_headers):
    r = await client.get("/v1/projects/proj_missing/audit", headers=root_headers)
    assert (r.status_code, r.json()["code"]) == (404, "not_found")


async def test_a_rewritten_and_rehashed_chain_is_still_detected(
    runtime, admin, client, root_headers, project_id
):
    """Recomputing plain SHA-256 hashes after an edit does not help without the master key."""
    import hashlib

    from sqlalchemy import select

    from keyguard.audit.models import AuditHead
    from keyguard.audit.service import GENESIS, canonical

    key = await create_key(client, root_headers, project_id)
    await client.delete(f"/v1/keys/{key['id']}", headers=root_headers)
    async with runtime.sessions.begin() as session:
        rows = (await session.execute(select(AuditEvent).order_by(AuditEvent.seq))).scalars()
        prev = GENESIS
        for ev in rows:
            if ev.action == "key.revoked":
                ev.action = "key.updated"
            ev.prev_hash = prev
            body = canonical(ev.seq, ev.at, ev.project_id, ev.actor, ev.action, ev.target, ev.data)
            ev.hash = hashlib.sha256(prev.encode() + body).hexdigest()
            prev = ev.hash
        head = (await session.execute(select(AuditHead))).scalar_one()
        head.hash = prev
    async with runtime.sessions() as session:
        assert await verify_chain(session)
