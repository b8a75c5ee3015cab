"""Signed checkpoints, public keys and Merkle proofs over HTTP (CONTRACT §10)."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import select

from audit_tree_helpers import leaf_hashes
from helpers import create_key
from keyguard.audit import merkle
from keyguard.audit.models import AuditEvent, AuditSigningKey
from keyguard.audit.note import Checkpoint, Verifier, split, verified_by
from keyguard.crypto.envelope import DecryptionError


def b64d(text: str) -> bytes:
    return base64.b64decode(text)


async def get_checkpoint(client, root_headers) -> tuple[str, Checkpoint]:
    r = await client.get("/v1/audit/checkpoint", headers=root_headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    text, _ = split(r.text)
    return r.text, Checkpoint.parse(text)


async def published_verifiers(client) -> list[Verifier]:
    r = await client.get("/v1/audit/keys")  # public keys need no credential
    assert r.status_code == 200, r.text
    return [Verifier.parse(k["verifier_key"]) for k in r.json()["keys"]]


async def test_the_checkpoint_is_a_signed_note_over_the_whole_log(
    client, root_headers, project_id, runtime
):
    for _ in range(3):
        await create_key(client, root_headers, project_id)
    note, checkpoint = await get_checkpoint(client, root_headers)
    leaves = await leaf_hashes(runtime)
    assert checkpoint.size == len(leaves) >= 4
    assert checkpoint.root == merkle.root_of(leaves)
    assert checkpoint.origin == "localhost:8443/keyguard/audit"
    verifiers = await published_verifiers(client)
    assert verified_by(note, verifiers)[1] == verifiers
    assert note.endswith("\n")
    assert "\n\n\u2014 localhost:8443/keyguard/audit " in note


async def test_checkpoints_and_proofs_need_a_root_key(client, root_headers, project_id):
    key = await create_key(client, root_headers, project_id)
    for path in (
        "/v1/audit/checkpoint",
        "/v1/audit/proofs/inclusion?seq=1",
        "/v1/audit/proofs/consistency?from=1",
    ):
        assert (await client.get(path)).status_code == 401
        r = await client.get(path, headers={"Authorization": f"Bearer {key['key']}"})
        assert r.status_code == 403, r.text
    r = await client.post(
        "/v1/audit/keys/rotate", headers={"Authorization": f"Bearer {key['key']}"}
    )
    assert r.status_code == 403


async def test_every_event_has_an_inclusion_proof_to_the_checkpoint_root(
    client, root_headers, project_id, runtime
):
    for _ in range(4):
        await create_key(client, root_headers, project_id)
    _, checkpoint = await get_checkpoint(client, root_headers)
    leaves = await leaf_hashes(runtime)
    for seq in range(1, checkpoint.size + 1):
        r = await client.get(
            f"/v1/audit/proofs/inclusion?seq={seq}&size={checkpoint.size}", headers=root_headers
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["leaf_index"], body["tree_size"]) == (seq - 1, checkpoint.size)
        assert b64d(body["leaf_hash"]) == leaves[seq - 1]
        assert b64d(body["root_hash"]) == checkpoint.root
        proof = [b64d(p) for p in body["proof"]]
        assert merkle.verify_inclusion(
            seq - 1, checkpoint.size, leaves[seq - 1], proof, checkpoint.root
        )
    # Against an older size too: the proof is to that size's root.
    r = await client.get("/v1/audit/proofs/inclusion?seq=2&size=3", headers=root_headers)
    body = r.json()
    assert b64d(body["root_hash"]) == merkle.root_of(leaves[:3])
    assert merkle.verify_inclusion(
        1, 3, leaves[1], [b64d(p) for p in body["proof"]], merkle.root_of(leaves[:3])
    )


async def test_a_later_checkpoint_proves_it_extends_an_earlier_one(
    client, root_headers, project_id
):
    _, first = await get_checkpoint(client, root_headers)
    for _ in range(5):
        await create_key(client, root_headers, project_id)
    _, second = await get_checkpoint(client, root_headers)
    r = await client.get(
        f"/v1/audit/proofs/consistency?from={first.size}&to={second.size}", headers=root_headers
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["from"], body["to"]) == (first.size, second.size)
    assert b64d(body["from_root"]) == first.root
    assert b64d(body["to_root"]) == second.root
    proof = [b64d(p) for p in body["proof"]]
    assert merkle.verify_consistency(first.size, second.size, first.root, second.root, proof)
    # ``to`` defaults to the log's size now.
    r = await client.get(f"/v1/audit/proofs/consistency?from={first.size}", headers=root_headers)
    assert r.json()["to"] == second.size


async def test_impossible_ranges_are_clear_422s(client, root_headers, runtime):
    _, checkpoint = await get_checkpoint(client, root_headers)
    n = checkpoint.size
    for query, code in [
        (f"inclusion?seq={n + 1}", "proof_range_invalid"),
        (f"inclusion?seq=1&size={n + 1}", "proof_range_invalid"),
        ("inclusion?seq=3&size=2", "proof_range_invalid"),
        ("inclusion?seq=0", "validation_failed"),
        ("inclusion?seq=9223372036854775808", "validation_failed"),
        ("inclusion", "validation_failed"),
        (f"consistency?from={n}&to=1", "proof_range_invalid"),
        (f"consistency?from={n + 1}", "proof_range_invalid"),
        ("consistency?from=0", "validation_failed"),
        ("consistency?from=1&to=-1", "validation_failed"),
    ]:
        r = await client.get(f"/v1/audit/proofs/{query}", headers=root_headers)
        assert r.status_code == 422, (query, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == code, query
    assert (await get_checkpoint(client, root_headers))[1] == checkpoint  # nothing changed


async def test_rotating_the_signing_key_keeps_old_checkpoints_verifiable(
    client, root_headers, runtime
):
    old_note, _ = await get_checkpoint(client, root_headers)
    [old_key] = await published_verifiers(client)
    r = await client.post("/v1/audit/keys/rotate", headers=root_headers)
    assert r.status_code == 201, r.text
    new_key = Verifier.parse(r.json()["verifier_key"])
    assert new_key != old_key
    assert r.json()["current"] is True
    listed = (await client.get("/v1/audit/keys")).json()["keys"]
    assert [k["current"] for k in listed] == [False, True]
    assert listed[0]["retired_at"] is not None
    assert listed[1]["retired_at"] is None
    new_note, _ = await get_checkpoint(client, root_headers)
    assert verified_by(new_note, [new_key])[1] == [new_key]
    assert verified_by(new_note, [old_key])[1] == []
    assert verified_by(old_note, await published_verifiers(client))[1] == [old_key]
    async with runtime.sessions() as session:
        last = (
            await session.execute(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1))
        ).scalar_one()
    assert (last.action, last.target) == ("audit.signing_key_rotated", new_key.key_id.hex())


async def test_the_signing_key_is_sealed_at_rest_and_bound_to_its_row(
    client, root_headers, runtime
):
    await get_checkpoint(client, root_headers)  # the first key
    await client.post("/v1/audit/keys/rotate", headers=root_headers)
    async with runtime.sessions() as session:
        rows = list((await session.execute(select(AuditSigningKey))).scalars())
    assert len(rows) == 2
    for row in rows:
        seed = runtime.envelope.open(row.private_sealed, context=f"audit-signing:{row.id}")
        assert seed not in row.private_sealed
        assert len(base64.b64decode(seed)) == 32
    # A sealed key copied onto another row does not open there.
    with pytest.raises(DecryptionError):
        runtime.envelope.open(rows[0].private_sealed, context=f"audit-signing:{rows[1].id}")
