"""OAuth against a real ``keyguard serve`` process (TLS, its own port) with the gateway
in the same process enforcing an OpenAPI document: Authlib's client reads discovery,
gets a client-credentials token, and that token passes the gateway to an operation that
needs it (the upstream is told the client and the scopes) and is refused once revoked."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from keyguard_process import KEYGUARD, init, reported_url, serve
from upstreams import EchoHandler, gateway_url, loopback

pytestmark = pytest.mark.e2e

LOCAL = ("--host", "127.0.0.1", "--port", "0")

DOCUMENT = """\
openapi: 3.1.0
info: {title: Partner API, version: "1"}
paths:
  /:
    get: {security: []}
  /accounts:
    get: {security: [{accessToken: [accounts:read]}]}
  /transfers:
    post: {security: [{accessToken: [transfers:write]}]}
components:
  securitySchemes:
    accessToken:
      type: oauth2
      flows:
        clientCredentials:
          tokenUrl: /oauth/token
          scopes: {accounts:read: read, transfers:write: write}
"""


@pytest.fixture
def upstream() -> Iterator[str]:
    with loopback(EchoHandler) as url:
        yield url


def test_a_standard_client_gets_a_token_that_the_gateway_enforces(
    tmp_path: Path, upstream: str
) -> None:
    data = tmp_path / "data"
    document = tmp_path / "partner.yaml"
    document.write_text(DOCUMENT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYGUARD_")}
    out = init(data, env=env)
    args = ("--gateway-upstream", upstream, "--gateway-port", "0")
    with serve(data, *args, "--gateway-openapi", str(document), env=env) as api:
        gateway = gateway_url(api.log)
        root = {"Authorization": f"Bearer {out['root_key']}"}
        with api.client() as c:
            made = c.post(
                f"/v1/projects/{out['project_id']}/oauth-apps",
                json={"name": "Partner", "scopes": ["accounts:read"]},
                headers=root,
            )
            assert made.status_code == 201, made.text
            app = made.json()
            metadata = c.get("/.well-known/oauth-authorization-server").json()
        # The issuer is the URL this process really listens on (it chose its port).
        assert metadata["issuer"] == api.url.rstrip("/")

        verify = ssl.create_default_context(cafile=str(api.ca))
        with OAuth2Client(
            client_id=app["client_id"], client_secret=app["client_secret"], verify=verify
        ) as client:
            token = client.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
        bearer = {"Authorization": f"Bearer {token['access_token']}"}
        with httpx.Client(base_url=gateway, verify=verify, timeout=10) as g:
            assert g.get("/").status_code == 200  # declared open
            passed = g.get("/accounts", headers=bearer)
            assert passed.status_code == 200, passed.text
            told = passed.json()["headers"]
            assert told["x-keyguard-client-id"] == app["client_id"]
            assert told["x-keyguard-scopes"] == "accounts:read"
            assert "x-keyguard-subject" not in told  # the client's own token
            missing = g.post("/transfers", headers=bearer)
            assert (missing.status_code, missing.json()["code"]) == (403, "scope_missing")
            undeclared = g.get("/admin", headers=bearer)
            assert (undeclared.status_code, undeclared.json()["code"]) == (
                404,
                "operation_not_declared",
            )

            with OAuth2Client(
                client_id=app["client_id"], client_secret=app["client_secret"], verify=verify
            ) as client:
                client.revoke_token(metadata["revocation_endpoint"], token["access_token"])
            refused = g.get("/accounts", headers=bearer)
            assert (refused.status_code, refused.json()["code"]) == (401, "token_revoked")
    assert app["client_secret"] not in api.log.read_text()
    assert token["access_token"] not in api.log.read_text()


def test_a_separate_gateway_without_redis_learns_a_revocation_within_seconds(
    tmp_path: Path, upstream: str
) -> None:
    """``keyguard gateway`` as its own process on the same database, no Redis: the
    in-process revoked set of the server is not its own, so it reads revocations back
    from the database. Both processes name the same issuer (KEYGUARD_PUBLIC_URL), as
    every process of one installation must: tokens name it, and the gateway checks it."""
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYGUARD_")}
    env["KEYGUARD_PUBLIC_URL"] = "https://keyguard.example"
    out = init(data, env=env)
    with serve(data, env=env) as api, api.client() as c:
        app = c.post(
            f"/v1/projects/{out['project_id']}/oauth-apps",
            json={"name": "Partner", "scopes": ["read"]},
            headers={"Authorization": f"Bearer {out['root_key']}"},
        ).json()
        auth = (app["client_id"], app["client_secret"])
        token = c.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=auth)
        bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
        log = tmp_path / "gateway.log"
        with log.open("wb") as written:
            gateway = subprocess.Popen(
                [*KEYGUARD, "gateway", "--upstream", upstream, *("--data", str(data)), *LOCAL],
                stdout=written,
                stderr=subprocess.STDOUT,
                env=env,
            )
        try:
            url = reported_url(gateway, log)
            verify = ssl.create_default_context(cafile=str(api.ca))
            with httpx.Client(base_url=url, verify=verify, timeout=10) as g:
                assert g.get("/anything", headers=bearer).status_code == 200
                revoked = c.post(
                    "/oauth/revoke", data={"token": token.json()["access_token"]}, auth=auth
                )
                assert revoked.status_code == 200
                deadline = time.monotonic() + 10
                while (answer := g.get("/anything", headers=bearer)).status_code == 200:
                    assert time.monotonic() < deadline, "the gateway never learnt it"
                    time.sleep(0.2)
                assert (answer.status_code, answer.json()["code"]) == (401, "token_revoked")
        finally:
            gateway.send_signal(signal.SIGTERM)
            try:
                gateway.wait(timeout=15)
            except subprocess.TimeoutExpired:
                gateway.kill()
                gateway.wait(timeout=5)
