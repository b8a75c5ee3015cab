"""A webhook URL's query (Slack-style ``?token=``) and userinfo never reach the
append-only audit log or any event payload: only the endpoint id and a redacted URL."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from keyguard.audit.models import AuditEvent
from keyguard.runtime import Runtime
from keyguard.webhooks.events import redact_url
from keyguard.webhooks.worker import DeliveryWorker
from webhook_helpers import Receiver, Reply, messages

TOKEN = "tok3n-s3cret-9f2a"


def test_redaction_keeps_scheme_host_port_and_path_only() -> None:
    assert redact_url("https://hooks.example.com/in?token=x#frag") == "https://hooks.example.com/in"
    assert redact_url("https://u:pw@hooks.example.com:8443/a/b?x=1") == (
        "https://hooks.example.com:8443/a/b"
    )
    assert redact_url("https://[2001:db8::1]:444/in?t=1") == "https://[2001:db8::1]:444/in"
    assert redact_url("http://127.0.0.1:9/") == "http://127.0.0.1:9/"
    assert redact_url("https://host:notaport/x?token=y") == ""


async def test_a_token_in_the_url_never_reaches_audit_data_or_payloads(
    client: httpx.AsyncClient,
    runtime: Runtime,
    root_headers: dict[str, str],
    project_id: str,
    receiver: Receiver,
    worker: DeliveryWorker,
) -> None:
    secret_url = receiver.on(f"/gone?token={TOKEN}", Reply(410))
    base = f"/v1/projects/{project_id}/webhooks"
    gone = await client.post(
        base,
        json={"url": secret_url, "events": ["*"]},
        headers=root_headers,
    )
    assert gone.status_code == 201, gone.text
    other = await client.post(
        base, json={"url": receiver.url("/other"), "events": ["*"]}, headers=root_headers
    )
    assert other.status_code == 201, other.text
    await client.post(
        f"/v1/projects/{project_id}/keys",
        json={"name": "k", "environment": "live"},
        headers=root_headers,
    )
    await worker.drain()

    got = (await client.get(f"{base}/{gone.json()['id']}", headers=root_headers)).json()
    assert (got["enabled"], got["disabled_reason"]) == (False, "gone")
    [note] = [s.json() for s in receiver.seen("/other") if s.json()["type"] == "endpoint.disabled"]
    assert note["data"]["endpoint_id"] == gone.json()["id"]
    assert note["data"]["url"] == receiver.url("/gone")

    async with runtime.sessions() as s:
        audited = list((await s.execute(select(AuditEvent))).scalars())
    disabled = [a for a in audited if a.action == "webhook.endpoint_disabled"]
    assert [a.target for a in disabled] == [gone.json()["id"]]
    assert disabled[0].data["url"] == receiver.url("/gone")
    assert all(TOKEN not in repr(a.data) for a in audited)
    assert all(TOKEN not in m.payload for m in await messages(runtime))
    assert all(TOKEN.encode() not in s.body for s in receiver.requests)
    audit_api = await client.get(f"/v1/projects/{project_id}/audit", headers=root_headers)
    assert audit_api.status_code == 200
    assert TOKEN not in audit_api.text
