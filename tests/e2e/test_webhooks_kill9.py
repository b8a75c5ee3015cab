"""kill -9 of the real server in the middle of deliveries loses nothing.

``keyguard init`` + ``keyguard serve`` in a real process; a receiver on loopback holds
the first deliveries open; the server is killed with SIGKILL while they hang; after a
restart every event arrives (at least once; receivers dedupe by ``webhook-id``) and
verifies with the seed's Python function.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from keyguard_process import reported_url

pytestmark = pytest.mark.e2e

KEYGUARD = Path(sys.executable).with_name("keyguard")
EVENTS = 12
TIMEOUT = 40.0


# The seed's Python verifier, copied verbatim (its imports are at the top of this module).
def verify_webhook(body: bytes, signature: str, secret: str) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


@dataclass
class Inbox:
    hold: threading.Event = field(default_factory=threading.Event)  # set: answer at once
    held: threading.Event = field(default_factory=threading.Event)  # a request is hanging
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _receiver(inbox: Inbox) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            if not inbox.hold.is_set():
                inbox.held.set()
                inbox.hold.wait(TIMEOUT)  # mid-delivery: the server dies meanwhile
                return  # never answered: the connection just closes
            with inbox.lock:
                inbox.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@dataclass
class Keyguard:
    data: Path
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    url: str = ""  # as reported by the running process; a restart may get another port

    def start(self, ca: ssl.SSLContext) -> None:
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            # Port 0: the kernel picks a free port and the server logs it, so nothing else
            # can take it between choosing and binding (nor after the SIGKILL).
            self.process = subprocess.Popen(
                [str(KEYGUARD), "serve", "--data", str(self.data), "--port", "0",
                 "--host", "127.0.0.1"],
                env=self.env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + TIMEOUT
        try:
            self.url = reported_url(self.process, self.log, offset=offset, timeout=TIMEOUT)
        except AssertionError:
            pass  # exited or silent: fail below, with the log
        else:
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{self.url}/v1/", verify=ca, timeout=1).status_code == 200:
                        return
                except httpx.HTTPError:
                    time.sleep(0.1)
                if self.process.poll() is not None:
                    break
        self.process.kill()
        self.process.wait(timeout=20)
        pytest.fail(f"keyguard serve did not start:\n{self.log.read_text()}")

    def kill(self, sig: int) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        return self.process.wait(timeout=20)


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    box = Inbox()
    yield box
    box.hold.set()


def test_kill_9_mid_delivery_loses_no_event(tmp_path: Path, inbox: Inbox) -> None:
    receiver = _receiver(inbox)
    env = {
        **os.environ,
        "KEYGUARD_WEBHOOK_ALLOW_PRIVATE": "127.0.0.0/8",
        # Short attempts, so the dead server's leases (2 x timeout + 5 s) expire soon.
        "KEYGUARD_WEBHOOK_TIMEOUT_SECONDS": "1",
        "KEYGUARD_HEADER_PREFIX": "APTR",
    }
    env.pop("KEYGUARD_DATABASE_URL", None)
    init = subprocess.run(
        [str(KEYGUARD), "init", "--email", "ops@example.com", "--password", "kill nine password 42",
         "--json", "--data", str(tmp_path / "data")],
        env=env, capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    created: dict[str, str] = json.loads(init.stdout)
    root = {"Authorization": f"Bearer {created['root_key']}"}
    project = created["project_id"]
    ca = ssl.create_default_context(cafile=created["ca_cert"])
    server = Keyguard(tmp_path / "data", env, tmp_path / "server.log")
    server.start(ca)
    try:
        with httpx.Client(base_url=server.url, verify=ca, headers=root, timeout=10) as api:
            secret = api.post(
                f"/v1/projects/{project}/webhook-secret/rotate", json={"overlap_seconds": 0}
            ).json()["webhook_secret"]
            hook = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
            r = api.post(
                f"/v1/projects/{project}/webhooks", json={"url": hook, "events": ["key.created"]}
            )
            assert r.status_code == 201, r.text
            endpoint = r.json()["id"]
            for i in range(EVENTS):
                r = api.post(
                    f"/v1/projects/{project}/keys", json={"name": f"k{i}", "environment": "live"}
                )
                assert r.status_code == 201, r.text
        assert inbox.held.wait(TIMEOUT), "no delivery reached the receiver"
        assert server.kill(signal.SIGKILL) == -signal.SIGKILL  # mid-delivery
        inbox.hold.set()  # from now on the receiver answers 200

        server.start(ca)  # server.url is now the restarted process's address
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            with inbox.lock:
                ids = {h["webhook-id"] for h, _ in inbox.received}
            if len(ids) == EVENTS:
                break
            time.sleep(0.2)
        with inbox.lock:
            received = list(inbox.received)
        ids = {h["webhook-id"] for h, _ in received}
        assert len(ids) == EVENTS, f"{len(ids)} of {EVENTS} events arrived"
        for headers, body in received:
            assert verify_webhook(body, headers["x-aptr-signature"], secret)
            assert json.loads(body)["type"] == "key.created"

        # The server marks a delivery succeeded only after it has read the 200 and
        # committed, so the last ones may still be pending when the receiver has them all.
        with httpx.Client(base_url=server.url, verify=ca, headers=root, timeout=10) as api:
            while True:
                r = api.get(f"/v1/projects/{project}/webhooks/{endpoint}/deliveries")
                assert r.status_code == 200, r.text
                page = r.json()
                statuses = {d["status"] for d in page["data"]}
                if statuses == {"succeeded"} or time.monotonic() >= deadline:
                    break
                time.sleep(0.2)
        assert statuses == {"succeeded"}, page["data"]
        assert {d["message_id"] for d in page["data"]} == ids
        # A clean stop (SIGTERM) ends the worker with the server.
        assert server.kill(signal.SIGTERM) == 0
    finally:
        if server.process is not None and server.process.poll() is None:
            server.process.kill()
            server.process.wait(timeout=20)
        receiver.shutdown()
        receiver.server_close()
