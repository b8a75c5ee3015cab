"""The real server, started like a user starts it, driven over verified TLS."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from keyguard_process import RunningServer, init, serve

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RunningServer, dict[str, str]]]:
    data = tmp_path_factory.mktemp("e2e") / "data"
    out = init(data)
    with serve(data) as running:
        yield running, out


def test_self_description_and_api_doc_need_no_credentials(server):
    running, _ = server
    with running.client() as c:
        assert c.get("/v1/").json()["name"] == "Keyguard"
        assert c.get("/v1/apiDoc").json()["openapi"].startswith("3.1")


def test_every_response_carries_hsts(server):
    running, _ = server
    with running.client() as c:
        assert "max-age=" in c.get("/v1/").headers["strict-transport-security"]


def test_key_lifecycle_over_tls(server):
    running, out = server
    root = {"Authorization": f"Bearer {out['root_key']}"}
    with running.client() as c:
        key = c.post(
            f"/v1/projects/{out['project_id']}/keys",
            json={"name": "e2e", "environment": "live"},
            headers=root,
        ).json()
        session = c.post(
            "/v1/sessions", json={"delivery_mode": "poll"}, headers={"API-Key": key["key"]}
        )
        assert session.status_code == 201
        # The upload page URL handed out names the port the server really bound (--port 0).
        page = c.get(session.json()["upload_url"])
        assert page.status_code == 200, session.json()["upload_url"]
        assert page.headers["content-type"].startswith("text/html")
        verified = c.post("/v1/keys/verify", json={"key": key["key"]}, headers=root).json()
        assert verified["valid"] is True
        assert c.delete(f"/v1/keys/{key['id']}", headers=root).status_code == 204
        refused = c.get(f"/v1/sessions/{session.json()['id']}", headers={"API-Key": key["key"]})
        assert (refused.status_code, refused.json()["code"]) == (401, "key_revoked")


def test_the_seeds_curl_command_works_with_the_host_changed(server):
    running, out = server
    root = {"Authorization": f"Bearer {out['root_key']}"}
    with running.client() as c:
        key = c.post(
            f"/v1/projects/{out['project_id']}/keys",
            json={"name": "seed", "environment": "live"},
            headers=root,
        ).json()["key"]
    r = subprocess.run(
        [
            "curl",
            "-sS",
            "--cacert",
            str(running.ca),
            "-X",
            "POST",
            f"{running.url}/v1/sessions",
            "-H",
            f"Authorization: Bearer {key}",
            "-H",
            "Content-Type: application/json",
            "-d",
            '{\n    "delivery_mode": "webhook",\n    "webhook_url": "https://your-app.com/webhook",\n'
            '    "password": "claim-4521-pin"\n  }',
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    body = json.loads(r.stdout)
    assert body["id"].startswith("sess_")
    assert "claim-4521-pin" not in r.stdout


def test_certificate_is_verified_against_the_generated_ca(server, tmp_path):
    running, _ = server
    with pytest.raises(httpx.ConnectError), httpx.Client(verify=True) as c:
        c.get(running.url + "/v1/")  # the system trust store does not know our CA


def test_secrets_never_reach_the_server_log(server):
    running, out = server
    assert out["root_key"] not in running.log.read_text()
    assert Path(out["ca_cert"]).exists()
