"""``keyguard serve --gateway-upstream``: the API and the gateway in one process.

Without Redis, state such as the signature replay cache lives in the process; running
both doors in one process is how an embedded deployment shares it. A signed request
accepted by the API is then refused as a replay by the gateway.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import ssl
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest
from keyguard_process import init, serve
from upstreams import gateway_url, loopback

pytestmark = pytest.mark.e2e


class _Upstream(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        payload = json.dumps({"key_id": self.headers.get("X-Keyguard-Key-Id")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def upstream() -> Iterator[str]:
    # Userinfo in the upstream URL stands for a credential: it must never reach the log.
    with loopback(_Upstream) as url:
        yield url.replace("http://", "http://ops:upstream-password@")


def _signed(key_id: str, secret: str, body: bytes) -> dict[str, str]:
    ts = str(int(time.time()))
    message = b"POST" + b"/v1/sessions" + body + ts.encode()
    signature = "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return {
        "X-API-Key": key_id,
        "X-Keyguard-Timestamp": ts,
        "X-Keyguard-Signature": signature,
        "Content-Type": "application/json",
    }


def test_one_process_serves_both_doors_and_they_share_the_replay_cache(
    tmp_path: Path, upstream: str
) -> None:
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYGUARD_")}
    out = init(data, env=env)
    args = ("--gateway-upstream", upstream, "--gateway-port", "0")
    with serve(data, *args, env=env) as api:
        gateway = gateway_url(api.log)
        root = {"Authorization": f"Bearer {out['root_key']}"}
        with api.client() as c:
            key = c.post(
                f"/v1/projects/{out['project_id']}/keys",
                json={"name": "signed", "environment": "live"},
                headers=root,
            ).json()
            made = c.post(f"/v1/keys/{key['id']}/signing-secret", headers=root)
            secret = made.json()["signing_secret"]
            body = b'{"delivery_mode": "poll"}'
            headers = _signed(key["id"], secret, body)
            assert c.post("/v1/sessions", content=body, headers=headers).status_code == 201

        verify = ssl.create_default_context(cafile=str(api.ca))
        with httpx.Client(base_url=gateway, verify=verify, timeout=10) as g:
            replayed = g.post("/v1/sessions", content=body, headers=headers)
            assert (replayed.status_code, replayed.json()["code"]) == (401, "signature_replayed")
            other = b'{"delivery_mode": "poll", "expires_in": 3600}'  # another signature
            fresh = g.post("/v1/sessions", content=other, headers=_signed(key["id"], secret, other))
            assert fresh.status_code == 200, fresh.text
            assert fresh.json() == {"key_id": key["id"]}
            assert "strict-transport-security" in fresh.headers

        api.process.send_signal(signal.SIGTERM)
        assert api.process.wait(timeout=20) == 0, api.log.read_text()
        assert "upstream-password" not in api.log.read_text()
