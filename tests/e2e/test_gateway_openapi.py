"""``keyguard gateway --openapi FILE`` as a real process: the upstream's document decides
which operations pass, with what credentials, and which are not declared at all."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from keyguard_process import KEYGUARD, init, reported_url, serve
from upstreams import EchoHandler, loopback

pytestmark = pytest.mark.e2e

DOCUMENT = """\
openapi: 3.0.3
info: {title: Banking, version: "1"}
servers: [{url: "https://api.example.com/banking"}]
security: [{apiKey: []}]
paths:
  /apiDoc:
    get: {security: []}
  /accounts:
    get: {}
components:
  securitySchemes:
    apiKey: {type: apiKey, in: header, name: API-Key}
"""


@pytest.fixture
def upstream() -> Iterator[str]:
    with loopback(EchoHandler) as url:
        yield url


def test_the_gateway_enforces_the_documents_operations(tmp_path: Path, upstream: str) -> None:
    data = tmp_path / "data"
    document = tmp_path / "banking.yaml"
    document.write_text(DOCUMENT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYGUARD_")}
    out = init(data, env=env)
    with serve(data, env=env) as api, api.client() as c:
        key = c.post(
            f"/v1/projects/{out['project_id']}/keys",
            json={"name": "app", "environment": "live"},
            headers={"Authorization": f"Bearer {out['root_key']}"},
        ).json()
        log = tmp_path / "gateway.log"
        with log.open("wb") as written:
            options = ["--openapi", str(document), "--data", str(data), "--host", "127.0.0.1"]
            gateway = subprocess.Popen(
                [*KEYGUARD, "gateway", "--upstream", upstream, *options, "--port", "0"],
                stdout=written,
                stderr=subprocess.STDOUT,
                env=env,
            )
        try:
            url = reported_url(gateway, log)
            assert "enforcing 2 operations of" in log.read_text()
            verify = ssl.create_default_context(cafile=str(api.ca))
            with httpx.Client(base_url=url, verify=verify, timeout=10) as g:
                doc = g.get("/banking/apiDoc")  # open: no credentials
                assert doc.status_code == 200, doc.text
                assert "x-keyguard-key-id" not in doc.json()["headers"]
                refused = g.get("/banking/accounts")
                assert (refused.status_code, refused.json()["code"]) == (
                    401,
                    "credentials_missing",
                )
                allowed = g.get("/banking/accounts", headers={"API-Key": key["key"]})
                assert allowed.status_code == 200, allowed.text
                assert allowed.json()["headers"]["x-keyguard-key-id"] == key["id"]
                undeclared = g.get("/banking/admin", headers={"API-Key": key["key"]})
                assert (undeclared.status_code, undeclared.json()["code"]) == (
                    404,
                    "operation_not_declared",
                )
        finally:
            gateway.send_signal(signal.SIGTERM)
            try:
                gateway.wait(timeout=15)
            except subprocess.TimeoutExpired:
                gateway.kill()
                gateway.wait(timeout=5)
