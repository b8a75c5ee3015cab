"""Leaked-key reports (CONTRACT §10), as GitHub's secret scanning sends them: a signed
report revokes a reported live key, audits it and alerts its owners; a bad signature
changes nothing; the answer never says which tokens were keys."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from helpers import POLL_SESSION, bearer, create_key
from keyguard.audit.models import AuditEvent
from keyguard.mail.models import MailMessage
from keyguard.settings import Settings

REPORTER = ec.generate_private_key(ec.SECP256R1())
IDENTIFIER = "90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a"


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    pem = REPORTER.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    listed = {
        "public_keys": [{"key_identifier": IDENTIFIER, "key": pem.decode(), "is_current": True}]
    }
    path = tmp_path / "reporters.json"
    path.write_text(json.dumps(listed))
    return settings.model_copy(update={"leak_reporters": path})


def signed(body: bytes, key: ec.EllipticCurvePrivateKey = REPORTER) -> dict[str, str]:
    signature = key.sign(body, ec.ECDSA(hashes.SHA256()))
    return {
        "Github-Public-Key-Identifier": IDENTIFIER,
        "Github-Public-Key-Signature": base64.b64encode(signature).decode(),
        "Content-Type": "application/json",
    }


def report(*tokens: str) -> bytes:
    return json.dumps(
        [{"token": t, "type": "keyguard_api_key", "url": "https://gist.example/1", "source": "gist"}
         for t in tokens]
    ).encode()  # fmt: skip


async def test_a_signed_report_revokes_the_key_and_alerts_its_owners(
    client, root_headers, project_id, runtime
):
    key = await create_key(client, root_headers, project_id, name="leaky")
    body = report(key["key"])
    reply = await client.post("/v1/leaks", content=body, headers=signed(body))
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"received": 1}
    refused = await client.post("/v1/sessions", json=POLL_SESSION, headers=bearer(key["key"]))
    assert (refused.status_code, refused.json()["code"]) == (401, "key_revoked")
    async with runtime.sessions() as db:
        leaked = (
            (await db.execute(select(AuditEvent.data).where(AuditEvent.action == "key.leaked")))
            .scalars()
            .all()
        )
        mails = (
            (await db.execute(select(MailMessage.subject).where(MailMessage.kind == "key_leaked")))
            .scalars()
            .all()
        )
    assert leaked == [{"source": "gist", "outcome": "revoked"}]
    assert mails == ["The API key “leaky” was found exposed and has been revoked"]


async def test_a_report_without_a_good_signature_changes_nothing(
    client, root_headers, project_id, runtime
):
    key = await create_key(client, root_headers, project_id)
    body = report(key["key"])
    impostor = ec.generate_private_key(ec.SECP256R1())
    for headers in (
        {},
        signed(body, impostor),
        {**signed(body), "Github-Public-Key-Identifier": "unknown"},
        {**signed(body), "Github-Public-Key-Signature": "not base64!"},
        signed(body + b" "),  # signed over another body
    ):
        reply = await client.post("/v1/leaks", content=body, headers=headers)
        assert reply.status_code == 401
        assert reply.json()["code"] == "leak_signature_invalid"
    works = await client.post("/v1/sessions", json=POLL_SESSION, headers=bearer(key["key"]))
    assert works.status_code == 201


async def test_the_answer_never_says_which_tokens_were_keys(client, root_headers, project_id):
    key = await create_key(client, root_headers, project_id)
    forged = key["key"][:-6] + ("A" * 6 if not key["key"].endswith("A" * 6) else "B" * 6)
    wrong_secret = (await create_key(client, root_headers, project_id))["id"] + key["key"][
        len(key["id"]) :
    ]
    answers = []
    for token in (forged, wrong_secret, "ghp_not_ours", key["key"]):
        body = report(token)
        answers.append((await client.post("/v1/leaks", content=body, headers=signed(body))).json())
    assert answers == [{"received": 1}] * 4


async def test_without_reporters_configured_every_report_is_refused(client, runtime):
    runtime.settings.leak_reporters = None
    body = report("x")
    assert (await client.post("/v1/leaks", content=body, headers=signed(body))).status_code == 401


async def quarantining_project(client, root_headers) -> str:
    r = await client.post(
        "/v1/projects", json={"name": "careful", "leak_policy": "quarantine"}, headers=root_headers
    )
    assert r.status_code == 201, r.text
    assert r.json()["leak_policy"] == "quarantine"
    return str(r.json()["id"])


async def test_a_quarantining_project_refuses_the_key_until_an_owner_releases_it(
    client, root_headers, runtime
):
    project = await quarantining_project(client, root_headers)
    key = await create_key(client, root_headers, project, name="leaky")
    body = report(key["key"])
    assert (await client.post("/v1/leaks", content=body, headers=signed(body))).status_code == 200
    refused = await client.post("/v1/sessions", json=POLL_SESSION, headers=bearer(key["key"]))
    assert (refused.status_code, refused.json()["code"]) == (401, "key_quarantined")
    shown = (await client.get(f"/v1/keys/{key['id']}", headers=root_headers)).json()
    assert shown["status"] == "quarantined"
    assert shown["quarantined_at"] is not None
    async with runtime.sessions() as db:
        leaked = (
            await db.execute(select(AuditEvent.data).where(AuditEvent.action == "key.leaked"))
        ).scalar_one()
        mail = (
            await db.execute(select(MailMessage.subject).where(MailMessage.kind == "key_leaked"))
        ).scalar_one()
    assert leaked == {"source": "gist", "outcome": "quarantined"}
    assert mail == "The API key “leaky” was found exposed and is quarantined"
    # A false report: an owner releases it and the same key works again, audited.
    released = await client.post(f"/v1/keys/{key['id']}/release", headers=root_headers)
    assert released.status_code == 200, released.text
    assert released.json()["status"] == "active"
    works = await client.post("/v1/sessions", json=POLL_SESSION, headers=bearer(key["key"]))
    assert works.status_code == 201
    again = await client.post(f"/v1/keys/{key['id']}/release", headers=root_headers)
    assert (again.status_code, again.json()["code"]) == (409, "key_not_quarantined")
    actions = [
        e["action"]
        for e in (await client.get(f"/v1/projects/{project}/audit", headers=root_headers)).json()[
            "data"
        ]
    ]
    key_actions = [a for a in actions if a in {"key.quarantined", "key.leaked", "key.released"}]
    assert key_actions == ["key.quarantined", "key.leaked", "key.released"]


async def test_regenerating_a_quarantined_key_lifts_the_quarantine_and_kills_the_leak(
    client, root_headers
):
    project = await quarantining_project(client, root_headers)
    key = await create_key(client, root_headers, project)
    body = report(key["key"])
    await client.post("/v1/leaks", content=body, headers=signed(body))
    fresh = (await client.post(f"/v1/keys/{key['id']}/regenerate", headers=root_headers)).json()
    assert fresh["status"] == "active"
    assert fresh["quarantined_at"] is None
    leaked = await client.post("/v1/sessions", json=POLL_SESSION, headers=bearer(key["key"]))
    assert leaked.status_code == 401
    works = await client.post("/v1/sessions", json=POLL_SESSION, headers=bearer(fresh["key"]))
    assert works.status_code == 201


async def test_the_leak_policy_is_changed_by_patch_and_checked(client, root_headers, project_id):
    r = await client.get(f"/v1/projects/{project_id}", headers=root_headers)
    assert r.json()["leak_policy"] == "revoke"
    for bad in ("delete", "", None, 1):
        r = await client.patch(
            f"/v1/projects/{project_id}", json={"leak_policy": bad}, headers=root_headers
        )
        if bad is None:  # "not changed"
            assert r.status_code == 200
            continue
        assert (r.status_code, r.json()["code"]) == (422, "validation_failed")
    r = await client.patch(
        f"/v1/projects/{project_id}", json={"leak_policy": "quarantine"}, headers=root_headers
    )
    assert r.json()["leak_policy"] == "quarantine"
