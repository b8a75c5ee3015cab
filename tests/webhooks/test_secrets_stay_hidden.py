"""Webhook secrets and session passwords never appear in logs, errors, reprs or a second
response."""

from __future__ import annotations

import io
import logging

import httpx
import pytest

from keyguard.accounts.service import InitResult
from keyguard.projects import service as projects
from keyguard.runtime import Runtime
from keyguard.webhooks import delivery as dl
from keyguard.webhooks.worker import DeliveryWorker
from webhook_helpers import Receiver, Reply

PASSWORD = "claim-4521-pin"
PNG = bytes.fromhex("89504e470d0a1a0a") + b"\x00" * 32


async def test_secrets_never_leak(
    client: httpx.AsyncClient,
    runtime: Runtime,
    admin: InitResult,
    root_headers: dict[str, str],
    project_id: str,
    receiver: Receiver,
    worker: DeliveryWorker,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = [admin.project.webhook_secret, PASSWORD]
    answers: list[str] = []

    url = receiver.on("/gone", Reply(410))
    r = await client.post(
        f"/v1/projects/{project_id}/webhooks",
        json={"url": url, "events": ["*"]},
        headers=root_headers,
    )
    answers.append(r.text)
    rotated = await client.post(
        f"/v1/projects/{project_id}/webhook-secret/rotate", headers=root_headers
    )
    secrets.append(rotated.json()["webhook_secret"])
    key = (
        await client.post(
            f"/v1/projects/{project_id}/keys",
            json={"name": "a", "environment": "live"},
            headers=root_headers,
        )
    ).json()["key"]
    bearer = {"Authorization": f"Bearer {key}"}
    session = await client.post(
        "/v1/sessions",
        json={"delivery_mode": "webhook", "webhook_url": receiver.url("/s"), "password": PASSWORD},
        headers=bearer,
    )
    answers.append(session.text)
    sid = session.json()["id"]
    answers.append(
        (await client.get(f"/v1/sessions/{sid}", headers={"Authorization": f"Bearer {key}"})).text
    )
    wrong = await client.post(
        f"/v1/sessions/{sid}/photos",
        files={"file": ("a.png", io.BytesIO(PNG), "image/png")},
        data={"password": PASSWORD + "x"},
    )
    answers.append(wrong.text)
    ok = await client.post(
        f"/v1/sessions/{sid}/photos",
        files={"file": ("a.png", io.BytesIO(PNG), "image/png")},
        headers={"X-APTR-Session-Password": PASSWORD},
    )
    answers.append(ok.text)
    for path in (
        f"/v1/projects/{project_id}",
        f"/v1/projects/{project_id}/webhooks",
        f"/v1/projects/{project_id}/audit",
    ):
        answers.append((await client.get(path, headers=root_headers)).text)
    await worker.drain()  # includes a 410 that disables the endpoint (a warning log)

    claim = dl.Claim("whdl_x", "d", "t")
    job = dl.Job(claim, None, url, b"{}", {"X-APTR-Signature": "sha256=" + "a" * 64}, 1, 0.0)
    reprs = [repr(job), repr(worker), repr(admin.project), repr(runtime.envelope)]
    reprs.append(
        repr(
            await projects.rotate_webhook_secret(
                runtime, project_id, overlap_seconds=0, actor="test"
            )
        )
    )
    captured = capsys.readouterr()
    haystack = "\n".join(
        [*answers, *reprs, captured.out, captured.err, caplog.text]
        + [r.getMessage() for r in caplog.records]
    )
    assert "webhook_endpoint_disabled" in captured.out + captured.err + caplog.text
    for secret in secrets:
        assert secret not in haystack
    # Nothing lets the receiver's side learn the password either.
    bodies = b"".join(r.body for r in receiver.requests).decode()
    assert PASSWORD not in bodies
