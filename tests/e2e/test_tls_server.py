"""keyguard.server.serve in a real process: TLS versions, HSTS, client certificates, HTTP.

Each server is ``tests/e2e/_echo_app.py`` (an app that echoes the ASGI TLS extension)
started on free loopback ports; clients verify it against the generated development CA.
"""

from __future__ import annotations

import hashlib
import json
import re
import signal
import ssl
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from helpers import self_signed

pytestmark = pytest.mark.e2e

ECHO_APP = Path(__file__).with_name("_echo_app.py")
START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0
REQUEST_TIMEOUT = 10.0
# Seed 004's "create a self-signed certificate" command, plus -subj to skip its prompts.
SEED_OPENSSL_COMMAND = (
    "openssl req -x509 -nodes -days 365 -newkey rsa:2048"
    " -keyout private.key -out certificate.crt -subj /CN=x"
)
PROBLEM_HTTPS_REQUIRED = {
    "type": "https://keyguard.dev/problems/https_required",
    "title": "HTTPS is required",
    "status": 403,
    "code": "https_required",
}


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    log: Path
    https_url: str
    http_url: str | None
    ca: Path


@dataclass(frozen=True)
class ClientCert:
    cert: Path
    key: Path

    @property
    def fingerprint(self) -> str:
        der = x509.load_pem_x509_certificate(self.cert.read_bytes()).public_bytes(
            serialization.Encoding.DER
        )
        return hashlib.sha256(der).hexdigest()


def _start(tmp: Path, *args: str) -> Server:
    log = tmp / "server.log"
    data = tmp / "data"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(ECHO_APP), str(data), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    want_http = "--http" in args
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        text = log.read_text()
        https = re.search(r"running on (https://127\.0\.0\.1:\d+)", text)
        http = re.search(r"running on (http://127\.0\.0\.1:\d+)", text)
        if https and (http or not want_http):
            return Server(
                process, log, https[1], http[1] if http else None, data / "tls" / "ca.pem"
            )
        if process.poll() is not None:
            break
        time.sleep(0.1)
    _stop(process)
    pytest.fail(f"server did not start:\n{log.read_text()}")


def _stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait(timeout=STOP_TIMEOUT)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    started = _start(tmp_path_factory.mktemp("server"), "--http")
    try:
        yield started
    finally:
        _stop(started.process)


@pytest.fixture(scope="module")
def openssl_cert(tmp_path_factory: pytest.TempPathFactory) -> ClientCert:
    """A client certificate made exactly as the seed's OpenSSL command makes one."""
    tmp = tmp_path_factory.mktemp("openssl")
    subprocess.run(
        SEED_OPENSSL_COMMAND.split(),
        cwd=tmp,
        check=True,
        capture_output=True,
        timeout=60,
    )
    return ClientCert(tmp / "certificate.crt", tmp / "private.key")


def _self_signed(tmp: Path, cn: str, not_before: datetime, not_after: datetime) -> ClientCert:
    cert, key = self_signed(cn, not_before, not_after)
    (tmp / f"{cn}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / f"{cn}.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ClientCert(tmp / f"{cn}.crt", tmp / f"{cn}.key")


@pytest.fixture(scope="module")
def expired_cert(tmp_path_factory: pytest.TempPathFactory) -> ClientCert:
    now = datetime.now(UTC)
    return _self_signed(
        tmp_path_factory.mktemp("expired"),
        "expired",
        now - timedelta(days=30),
        now - timedelta(days=1),
    )


def _context(
    ca: Path,
    cert: ClientCert | None = None,
    maximum: ssl.TLSVersion | None = None,
) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    if cert is not None:
        context.load_cert_chain(cert.cert, cert.key)
    if maximum is not None:
        context.maximum_version = maximum
    return context


def _echo(
    server: Server, cert: ClientCert | None = None, maximum: ssl.TLSVersion | None = None
) -> dict[str, Any]:
    context = _context(server.ca, cert, maximum)
    with httpx.Client(verify=context, timeout=REQUEST_TIMEOUT) as client:
        response = client.get(server.https_url + "/echo")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def _curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["curl", "--silent", "--show-error", "--max-time", str(REQUEST_TIMEOUT), *args],
        capture_output=True,
        text=True,
        timeout=REQUEST_TIMEOUT + 5,
    )


# ---- TLS versions and HSTS ------------------------------------------------------------


def test_startup_prints_the_ca_certificate_path(server: Server) -> None:
    assert f"Keyguard CA certificate: {server.ca.resolve()}" in server.log.read_text()


@pytest.mark.parametrize(
    ("maximum", "wire_version"),
    [(ssl.TLSVersion.TLSv1_2, 0x0303), (ssl.TLSVersion.TLSv1_3, 0x0304)],
)
def test_tls_1_2_and_1_3_are_served(
    server: Server, maximum: ssl.TLSVersion, wire_version: int
) -> None:
    tls = _echo(server, maximum=maximum)["tls"]
    assert tls["tls_version"] == wire_version
    assert isinstance(tls["cipher_suite"], int)
    assert tls["server_cert"].startswith("-----BEGIN CERTIFICATE-----")


@pytest.mark.parametrize("version", ["TLSv1_1", "TLSv1"])
def test_tls_1_1_and_1_0_are_refused(server: Server, version: str) -> None:
    context = _context(server.ca)
    # Let the client really offer the old version, so the refusal is the server's.
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # old versions warn when named
        old = getattr(ssl.TLSVersion, version)
        context.minimum_version = old
        context.maximum_version = old
    with (
        httpx.Client(verify=context, timeout=REQUEST_TIMEOUT) as client,
        pytest.raises(httpx.ConnectError) as refused,
    ):
        client.get(server.https_url)
    assert "NO_PROTOCOLS_AVAILABLE" not in str(refused.value)


def test_https_responses_carry_hsts(server: Server) -> None:
    with httpx.Client(verify=_context(server.ca), timeout=REQUEST_TIMEOUT) as client:
        response = client.get(server.https_url)
    assert response.headers["strict-transport-security"] == ("max-age=63072000; includeSubDomains")


# ---- client certificates --------------------------------------------------------------


def test_no_client_certificate_gives_an_empty_chain(server: Server) -> None:
    tls = _echo(server)["tls"]
    assert tls["client_cert_chain"] == []
    assert tls["client_cert_name"] is None
    assert tls["client_cert_error"] is None


def test_seed_openssl_certificate_reaches_the_app_through_curl(
    server: Server, openssl_cert: ClientCert
) -> None:
    result = _curl(
        "--cacert", str(server.ca),
        "--cert", str(openssl_cert.cert),
        "--key", str(openssl_cert.key),
        server.https_url + "/v1/sessions",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["fingerprint"] == openssl_cert.fingerprint
    assert body["tls"]["client_cert_name"] == "CN=x"
    pem = openssl_cert.cert.read_text()
    assert ssl.PEM_cert_to_DER_cert(body["tls"]["client_cert_chain"][0]) == (
        ssl.PEM_cert_to_DER_cert(pem)
    )


def test_curl_reaches_the_server_by_localhost_name(server: Server) -> None:
    port = server.https_url.rsplit(":", 1)[1]
    result = _curl("--cacert", str(server.ca), f"https://localhost:{port}/")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["scheme"] == "https"


@pytest.mark.parametrize("maximum", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_client_certificate_reaches_the_app_through_httpx(
    server: Server, openssl_cert: ClientCert, maximum: ssl.TLSVersion
) -> None:
    body = _echo(server, openssl_cert, maximum)
    assert body["fingerprint"] == openssl_cert.fingerprint


def test_expired_client_certificate_still_reaches_the_app(
    server: Server, expired_cert: ClientCert
) -> None:
    # The handshake must not judge it: the engine refuses it with a readable 403.
    body = _echo(server, expired_cert)
    assert body["fingerprint"] == expired_cert.fingerprint
    assert body["tls"]["client_cert_name"] == "CN=expired"


def test_each_connection_reports_its_own_certificate(
    server: Server, openssl_cert: ClientCert, expired_cert: ClientCert
) -> None:
    with (
        httpx.Client(verify=_context(server.ca, openssl_cert), timeout=REQUEST_TIMEOUT) as a,
        httpx.Client(verify=_context(server.ca), timeout=REQUEST_TIMEOUT) as b,
    ):
        for _ in range(2):  # keep-alive: later requests on a connection keep its identity
            assert a.get(server.https_url).json()["fingerprint"] == openssl_cert.fingerprint
            assert b.get(server.https_url).json()["fingerprint"] is None


# ---- plain HTTP listener --------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_plain_http_reads_are_redirected_to_https(server: Server, method: str) -> None:
    assert server.http_url is not None
    with httpx.Client(timeout=REQUEST_TIMEOUT) as client:
        response = client.request(method, server.http_url + "/v1/keys?page=2")
    assert response.status_code == 308
    assert response.headers["location"] == server.https_url + "/v1/keys?page=2"
    assert "strict-transport-security" not in response.headers


@pytest.mark.parametrize(
    "credentials",
    [
        {"Authorization": "Bearer kg_live_x"},
        {"X-API-Key": "kg_live_x"},
        {"API-Key": "kg_live_x"},
        {"X-API-Secret": "eA=="},
    ],
)
def test_plain_http_reads_carrying_a_key_are_refused_not_redirected(
    server: Server, credentials: dict[str, str]
) -> None:
    """A client that follows redirects would never learn its key travelled in cleartext."""
    assert server.http_url is not None
    with httpx.Client(timeout=REQUEST_TIMEOUT) as client:
        response = client.get(server.http_url + "/v1/sessions/sess_x", headers=credentials)
    assert response.status_code == 403
    assert response.json() == PROBLEM_HTTPS_REQUIRED


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_plain_http_writes_get_https_required(server: Server, method: str) -> None:
    assert server.http_url is not None
    with httpx.Client(timeout=REQUEST_TIMEOUT) as client:
        response = client.request(
            method, server.http_url + "/v1/sessions", headers={"Authorization": "Bearer x"}
        )
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == PROBLEM_HTTPS_REQUIRED


def test_plain_http_never_reaches_the_app(server: Server) -> None:
    assert server.http_url is not None
    with httpx.Client(timeout=REQUEST_TIMEOUT, follow_redirects=False) as client:
        response = client.get(server.http_url + "/echo")
    assert "tls" not in response.text


# ---- fallback trust mode and shutdown -------------------------------------------------


def test_pinned_mode_admits_registered_expired_certificate_and_refuses_unknown(
    tmp_path: Path, expired_cert: ClientCert, openssl_cert: ClientCert
) -> None:
    pinned = _start(tmp_path, "--pinned", "--register", str(expired_cert.cert))
    try:
        assert "only registered ones complete the TLS handshake" in pinned.log.read_text()
        assert _echo(pinned, expired_cert)["fingerprint"] == expired_cert.fingerprint
        assert _echo(pinned)["fingerprint"] is None
        with (
            httpx.Client(
                verify=_context(pinned.ca, openssl_cert), timeout=REQUEST_TIMEOUT
            ) as client,
            pytest.raises(httpx.TransportError),
        ):
            client.get(pinned.https_url)
    finally:
        _stop(pinned.process)


def test_sigterm_shuts_down_gracefully(tmp_path: Path) -> None:
    started = _start(tmp_path, "--http")
    assert _stop(started.process) == 0
    assert started.log.read_text().count("Finished server process") == 2
