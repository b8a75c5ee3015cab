"""Per-key restrictions against the real processes, driven by curl as the seeds do.

``keyguard serve`` terminates TLS itself and hands the client certificate to the policy
engine; ``keyguard gateway`` does the same in front of a plain-HTTP upstream. The client
certificates are made with seed 004's OpenSSL command.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyotp
import pytest
from keyguard_process import KEYGUARD, RunningServer, init, reported_url, serve

pytestmark = pytest.mark.e2e

# Seed 004's "create a self-signed certificate" command, plus -subj to skip its prompts.
SEED_OPENSSL = (
    "openssl req -x509 -nodes -days 365 -newkey rsa:2048 -keyout {key} -out {crt} -subj /CN={cn}"
)
ENV = {**os.environ, "KEYGUARD_HEADER_PREFIX": "APTR"}
SESSION = '{ "delivery_mode": "webhook", "webhook_url": "https://your-app.com/webhook" }'


@dataclass(frozen=True)
class ClientCert:
    crt: Path
    key: Path


@dataclass
class Env:
    server: RunningServer
    out: dict[str, str]
    tmp: Path
    mine: ClientCert
    other: ClientCert

    @property
    def root(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.out['root_key']}"}


def _openssl_cert(tmp: Path, cn: str) -> ClientCert:
    crt, key = tmp / f"{cn}.crt", tmp / f"{cn}.key"
    subprocess.run(
        SEED_OPENSSL.format(key=key, crt=crt, cn=cn).split(),
        check=True,
        capture_output=True,
        timeout=60,
    )
    return ClientCert(crt, key)


def curl(url: str, ca: Path, *args: str) -> tuple[int, dict[str, object]]:
    r = subprocess.run(
        [
            "curl",
            "--silent",
            "--show-error",
            "--max-time",
            "15",
            "--cacert",
            str(ca),
            "-w",
            "\n%{http_code}",
            *args,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    body, _, status = r.stdout.rpartition("\n")
    return int(status), (json.loads(body) if body.strip() else {})


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("restrictions-e2e")
    data = tmp / "data"
    out = init(data, env=ENV)
    mine, other = _openssl_cert(tmp, "mine"), _openssl_cert(tmp, "other")
    with serve(data, env=ENV) as running:
        yield Env(running, out, tmp, mine, other)


def _key_with_cert(env: Env, cert: ClientCert, **body: object) -> dict[str, str]:
    with env.server.client() as c:
        key = c.post(
            f"/v1/projects/{env.out['project_id']}/keys",
            json={"name": "mtls", "environment": "live", **body},
            headers=env.root,
        ).json()
        r = c.post(
            f"/v1/keys/{key['id']}/certificates",
            json={"pem": cert.crt.read_text()},
            headers=env.root,
        )
        assert r.status_code == 201, r.text
    return dict(key)


def test_mtls_with_curl_and_the_seed_certificate(env: Env) -> None:
    key = _key_with_cert(env, env.mine)
    url = env.server.url + "/v1/sessions"
    common = [
        "-H",
        f"Authorization: Bearer {key['key']}",
        "-H",
        "Content-Type: application/json",
        "-d",
        SESSION,
    ]
    status, body = curl(
        url, env.server.ca, "--cert", str(env.mine.crt), "--key", str(env.mine.key), *common
    )
    assert status == 201, body
    status, body = curl(url, env.server.ca, *common)
    assert (status, body["code"]) == (403, "client_certificate_required")
    status, body = curl(
        url, env.server.ca, "--cert", str(env.other.crt), "--key", str(env.other.key), *common
    )
    assert (status, body["code"]) == (403, "client_certificate_invalid")
    # A certificate header from a peer that is not a trusted proxy is ignored.
    der_b64 = subprocess.run(
        ["openssl", "x509", "-in", str(env.mine.crt), "-outform", "DER"],
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout
    forged = f"Client-Cert: :{base64.b64encode(der_b64).decode()}:"
    status, body = curl(url, env.server.ca, "-H", forged, *common)
    assert (status, body["code"]) == (403, "client_certificate_required")


def test_the_seeds_totp_curl_works_with_the_host_changed(env: Env) -> None:
    with env.server.client() as c:
        key = c.post(
            f"/v1/projects/{env.out['project_id']}/keys",
            json={"name": "totp", "environment": "live"},
            headers=env.root,
        ).json()
        secret = c.post(f"/v1/keys/{key['id']}/totp", headers=env.root).json()["secret"]
        totp = pyotp.TOTP(secret)
        r = c.post(
            f"/v1/keys/{key['id']}/totp/confirm", json={"code": totp.now()}, headers=env.root
        )
        assert r.status_code == 200, r.text
    url = env.server.url + "/v1/sessions"
    args = [
        "-X",
        "POST",
        "-H",
        f"Authorization: Bearer {key['key']}",
        "-H",
        "Content-Type: application/json",
        "-d",
        SESSION,
    ]
    status, body = curl(url, env.server.ca, *args)
    assert (status, body["code"]) == (401, "totp_required")
    code = totp.at(time.time() + 30)  # the current step's code was spent on confirmation
    status, body = curl(url, env.server.ca, "-H", f"X-APTR-TOTP: {code}", *args)
    assert status == 201, body
    status, body = curl(url, env.server.ca, "-H", f"X-APTR-TOTP: {code}", *args)
    assert (status, body["code"]) == (401, "totp_invalid")


class _Echo(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        payload = json.dumps(
            {"path": self.path, "headers": dict(self.headers.items()), "body": body.decode()}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture(scope="module")
def gateway(env: Env) -> Iterator[str]:
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=upstream.serve_forever, daemon=True)
    thread.start()
    log = env.tmp / "gateway.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                *KEYGUARD,
                "gateway",
                "--upstream",
                f"http://127.0.0.1:{upstream.server_port}",
                "--data",
                str(env.tmp / "data"),
                "--host",
                "127.0.0.1",
                "--port",
                "0",  # the gateway reports the port it bound
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=ENV,
        )
    try:
        deadline = time.monotonic() + 30
        url = reported_url(process, log, timeout=30)
        while True:
            assert process.poll() is None, log.read_text()
            try:
                status, _ = curl(url + "/ping", env.server.ca)
                if status == 401:
                    break
            except AssertionError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        upstream.shutdown()
        upstream.server_close()


def test_the_gateway_checks_then_forwards_with_identity_headers(env: Env, gateway: str) -> None:
    key = _key_with_cert(env, env.mine, scopes=["photos:read"])
    cert = ["--cert", str(env.mine.crt), "--key", str(env.mine.key)]
    status, body = curl(
        gateway + "/photos?x=1",
        env.server.ca,
        *cert,
        "-H",
        f"Authorization: Bearer {key['key']}",
        "-H",
        "X-APTR-Key-Id: forged",
    )
    assert status == 200, body
    headers = {k.lower(): v for k, v in body["headers"].items()}  # type: ignore[union-attr]
    assert body["path"] == "/photos?x=1"
    assert headers["x-aptr-key-id"] == key["id"]
    assert headers["x-aptr-scopes"] == "photos:read"
    assert headers["x-forwarded-proto"] == "https"
    assert "authorization" not in headers
    status, body = curl(
        gateway + "/photos", env.server.ca, "-H", f"Authorization: Bearer {key['key']}"
    )
    assert (status, body["code"]) == (403, "client_certificate_required")
