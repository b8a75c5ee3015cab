"""The article's webhook receivers, copied off the served page, verify Keyguard's own
deliveries: real events, signed by the delivery worker and received over HTTP on
loopback. Each accepts the genuine delivery (on either secret during a rotation) and
refuses a changed body, another secret and an old timestamp. Node's is run by ``node``
(skipped only when node is not installed)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from help_article import code_block, page

from keyguard.accounts.service import InitResult
from keyguard.clock import FrozenClock
from keyguard.keys import service as keys
from keyguard.projects import service as projects
from keyguard.runtime import Runtime
from keyguard.webhooks.signing import new_webhook_secret
from keyguard.webhooks.worker import DeliveryWorker
from webhook_helpers import Receiver, Seen, add_endpoint


@dataclass(frozen=True)
class Case:
    name: str
    body: bytes
    headers: dict[str, str]
    secret: str
    genuine: bool


async def _deliver(
    runtime: Runtime, project_id: str, worker: DeliveryWorker, receiver: Receiver, name: str
) -> Seen:
    """One real delivery: a key is created, its key.created event goes out."""
    before = len(receiver.requests)
    await keys.create_key(runtime, project_id, keys.KeySpec(name=name), actor="test")
    await worker.drain()
    assert len(receiver.requests) == before + 1
    return receiver.requests[-1]


@pytest.fixture
async def cases(
    runtime: Runtime,
    admin: InitResult,
    project_id: str,
    receiver: Receiver,
    worker: DeliveryWorker,
    clock: FrozenClock,
) -> list[Case]:
    secret = admin.project.webhook_secret
    await add_endpoint(runtime, project_id, receiver.url("/webhook"))

    genuine = await _deliver(runtime, project_id, worker, receiver, "now")
    assert genuine.json()["type"] == "key.created"
    assert genuine.headers["webhook-signature"].startswith("v1,")

    clock.advance(-600)  # Keyguard signs this one ten minutes ago, then time goes on
    old = await _deliver(runtime, project_id, worker, receiver, "ten minutes ago")
    clock.advance(600)
    assert int(old.headers["webhook-timestamp"]) <= int(genuine.headers["webhook-timestamp"]) - 590

    rotated = await projects.rotate_webhook_secret(
        runtime, project_id, overlap_seconds=3600, actor="test"
    )
    overlap = await _deliver(runtime, project_id, worker, receiver, "after rotation")
    assert len(overlap.headers["webhook-signature"].split()) == 2  # new and previous

    tampered = genuine.body.replace(b'"now"', b'"NOW"')
    assert tampered != genuine.body
    return [
        Case("genuine", genuine.body, genuine.headers, secret, True),
        Case("tampered body", tampered, genuine.headers, secret, False),
        Case("wrong secret", genuine.body, genuine.headers, new_webhook_secret(), False),
        Case("old timestamp", old.body, old.headers, secret, False),
        Case("rotation, new secret", overlap.body, overlap.headers, rotated.webhook_secret, True),
        Case("rotation, previous secret", overlap.body, overlap.headers, secret, True),
        Case(
            "another secret during rotation",
            overlap.body,
            overlap.headers,
            new_webhook_secret(),
            False,
        ),
        Case(
            "no signature",
            genuine.body,
            {k: v for k, v in genuine.headers.items() if k != "webhook-signature"},
            secret,
            False,
        ),
    ]


async def test_the_python_snippet_verifies_real_deliveries(
    client: httpx.AsyncClient, cases: list[Case]
) -> None:
    code = code_block(await page(client), "webhook-python")
    namespace: dict[str, Any] = {}
    exec(compile(code, "help-security-webhook.py", "exec"), namespace)
    verify: Callable[[bytes, dict[str, str], str], bool] = namespace["verify_webhook"]
    results = {case.name: verify(case.body, case.headers, case.secret) for case in cases}
    assert results == {case.name: case.genuine for case in cases}


async def test_the_python_snippet_runs_in_a_plain_interpreter(
    client: httpx.AsyncClient, cases: list[Case], tmp_path: Path
) -> None:
    """Standard library only: the snippet runs in ``python -I`` (no site packages)."""
    script = tmp_path / "receiver.py"
    script.write_text(
        code_block(await page(client), "webhook-python")
        + "\n\nimport json, sys\n"
        + "cases = json.load(sys.stdin)\n"
        + "print(json.dumps([verify_webhook(bytes.fromhex(c['body']), c['headers'],"
        + " c['secret']) for c in cases]))\n"
    )
    given = [{"body": c.body.hex(), "headers": c.headers, "secret": c.secret} for c in cases]
    run = await asyncio.to_thread(
        subprocess.run,
        ["python3", "-I", str(script)],
        input=json.dumps(given),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == [c.genuine for c in cases]


# Around the Node snippet, served verbatim: stand-ins for Express (the snippet registers
# its handler with app.post), then each case goes through that handler.
NODE_BEFORE = """
const handlers = {};
const express = { raw: () => (req, res, next) => next() };
const app = { post: (path, middleware, handler) => { handlers[path] = handler; } };
"""
NODE_AFTER = """
const cases = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
const results = cases.map((c) => {
  process.env.WEBHOOK_SECRET = c.secret;
  let status = 0;
  const res = {
    status(code) { status = code; return this; },
    send() { return this; },
    end() { return this; },
  };
  handlers["/webhook"]({ body: Buffer.from(c.body, "base64"), headers: c.headers }, res);
  return { status, direct: verifyWebhook(Buffer.from(c.body, "base64"), c.headers, c.secret) };
});
console.log(JSON.stringify(results));
"""


async def test_the_node_snippet_verifies_real_deliveries(
    client: httpx.AsyncClient, cases: list[Case], tmp_path: Path
) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    script = tmp_path / "receiver.js"
    script.write_text(NODE_BEFORE + code_block(await page(client), "webhook-node") + NODE_AFTER)
    given = [
        {"body": base64.b64encode(c.body).decode(), "headers": c.headers, "secret": c.secret}
        for c in cases
    ]
    run = await asyncio.to_thread(
        subprocess.run,
        [node, str(script)],
        input=json.dumps(given),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "NODE_OPTIONS"},
    )
    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout)
    assert [r["direct"] for r in results] == [c.genuine for c in cases]
    assert [r["status"] for r in results] == [200 if c.genuine else 401 for c in cases]
