"""Deliveries verified by the seed's own receiver code, as a user would run it.

- Python: the seed's ``verify_webhook`` (copied verbatim) and ``standardwebhooks``;
- Node: the seed's Express snippet, verbatim, in a real ``node`` process (skipped, with
  the reason, when node/npm is missing or ``npm install express`` cannot run).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from keyguard.accounts.service import InitResult
from keyguard.keys import service as keys
from keyguard.runtime import Runtime
from keyguard.webhooks.sender import send_webhook
from keyguard.webhooks.worker import DeliveryWorker
from webhook_helpers import Receiver, Reply, Seen, add_endpoint, attempts, deliveries


# The seed's Python verifier, copied verbatim (its imports are at the top of this module).
def verify_webhook(body: bytes, signature: str, secret: str) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


async def test_every_delivery_verifies_with_the_seed_function_and_standardwebhooks(
    runtime: Runtime,
    admin: InitResult,
    project_id: str,
    receiver: Receiver,
    worker: DeliveryWorker,
) -> None:
    secret = admin.project.webhook_secret

    def check(seen: Seen) -> Reply:
        ok = verify_webhook(seen.body, seen.headers.get("x-aptr-signature", ""), secret)
        try:
            Webhook(secret).verify(seen.body, seen.headers)
        except Exception:
            ok = False
        return Reply(200 if ok else 401)

    await add_endpoint(runtime, project_id, receiver.on("/webhook", check))
    for i in range(5):
        await keys.create_key(runtime, project_id, keys.KeySpec(name=f"k{i}"), actor="test")
    await worker.drain()
    assert len(receiver.requests) == 5
    assert {d.status for d in await deliveries(runtime)} == {"succeeded"}


# The seed's Node snippet, verbatim between the markers; only the scaffolding around it
# (require express, read the secret, listen) is ours.
SEED_NODE = """
const crypto = require("crypto");

function verifyWebhook(body, signatureHeader, secret) {
  const expected = "sha256=" +
    crypto.createHmac("sha256", secret)
      .update(body)
      .digest("hex");

  return crypto.timingSafeEqual(
    Buffer.from(expected),
    Buffer.from(signatureHeader)
  );
}

// In your Express handler:
app.post("/webhook", express.raw({ type: "*/*" }), (req, res) => {
  if (!verifyWebhook(req.body, req.headers["x-aptr-signature"], WEBHOOK_SECRET)) {
    return res.status(401).send("Invalid signature");
  }
  // Safe to process...
  res.status(200).end();
});
"""

NODE_SERVER = (
    'const express = require("express");\n'
    "const app = express();\n"
    "const WEBHOOK_SECRET = process.env.WEBHOOK_SECRET;\n"
    + SEED_NODE
    + 'const server = app.listen(0, "127.0.0.1", () => {\n'
    '  console.log("listening " + server.address().port);\n'
    "});\n"
)


FORGED = "sha256=" + "0" * 64


# Shared by every suite on the machine. It only ever appears whole: each process installs
# into a directory of its own, writes the marker last, then renames it into place. (Not the
# old "keyguard-test-express", which older checkouts still fill in place, without a marker.)
EXPRESS_DIR = "keyguard-test-express-v2"
EXPRESS_READY = ".keyguard-install-complete"


def _express_dir() -> Path:
    if not shutil.which("node") or not shutil.which("npm"):
        pytest.skip("node and npm are not installed: the seed's Express snippet cannot run")
    where = Path(tempfile.gettempdir()) / EXPRESS_DIR
    if (where / EXPRESS_READY).is_file():
        return where
    # Same file system as `where`, so the rename below is atomic.
    staging = Path(tempfile.mkdtemp(prefix=f"{EXPRESS_DIR}.{os.getpid()}.", dir=where.parent))
    staging.chmod(0o755)  # mkdtemp's 0700 would hide it from other users' suites
    (staging / "package.json").write_text('{"private": true}\n')
    try:
        subprocess.run(
            ["npm", "install", "express", "--no-audit", "--no-fund", "--silent"],
            cwd=staging,
            check=True,
            timeout=180,
            capture_output=True,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        pytest.skip(f"npm install express failed (offline?): {exc}")
    (staging / EXPRESS_READY).write_text("ok\n")
    try:
        os.rename(staging, where)
    except OSError:
        # Another process got there first (`where` exists and is not empty).
        if (where / EXPRESS_READY).is_file():
            shutil.rmtree(staging, ignore_errors=True)
            return where
        return staging  # `where` is not one of ours: keep using the private install
    return where


@pytest.fixture
def express(admin: InitResult) -> Iterator[str]:
    where = _express_dir()
    script = where / f"seed_receiver_{os.getpid()}.js"
    script.write_text(NODE_SERVER)
    env = {**os.environ, "WEBHOOK_SECRET": admin.project.webhook_secret}
    process = subprocess.Popen(
        ["node", str(script)], cwd=where, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.match(r"listening (\d+)", line)
        assert match, f"the node receiver did not start: {line!r}"
        yield f"http://127.0.0.1:{match[1]}/webhook"
    finally:
        process.kill()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
        script.unlink(missing_ok=True)


async def test_the_seed_express_snippet_accepts_every_delivery(
    runtime: Runtime,
    admin: InitResult,
    project_id: str,
    worker: DeliveryWorker,
    express: str,
) -> None:
    await add_endpoint(runtime, project_id, express)
    for i in range(3):
        await keys.create_key(runtime, project_id, keys.KeySpec(name=f"k{i}"), actor="test")
    await worker.drain()
    found = await deliveries(runtime)
    assert len(found) == 3
    for delivery in found:
        assert delivery.status == "succeeded"
        assert [a.status_code for a in await attempts(runtime, delivery.id)] == [200]
    # The snippet really checks: a forged signature of the same length is refused.
    forged = await send_webhook(
        express,
        b'{"type":"key.revoked"}',
        {"X-APTR-Signature": FORGED},
        allow_private=runtime.settings.webhook_private_networks,
    )
    assert forged.status_code == 401
