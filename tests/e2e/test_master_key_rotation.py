"""Master-key rotation while the real server runs (issue 10): every sealed secret moves to
the new key, the server keeps working throughout, and after a restart without the old key
every key, secret and the audit chain still verify."""

from __future__ import annotations

import hashlib
import hmac
import os
import subprocess
import time
from pathlib import Path

import pytest
from keyguard_process import KEYGUARD, init, serve

pytestmark = pytest.mark.e2e


def keyguard(*args: str, data: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KEYGUARD, *args, "--data", str(data)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def signed(key_id: str, secret: str, body: bytes) -> dict[str, str]:
    ts = str(int(time.time()))
    message = b"POST/v1/sessions" + body + ts.encode()
    return {
        "X-API-Key": key_id,
        "X-Keyguard-Timestamp": ts,
        "X-Keyguard-Signature": "sha256="
        + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest(),
        "Content-Type": "application/json",
    }


def test_rotating_the_master_key_online_then_retiring_the_old_one(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYGUARD_")}
    out = init(data, env=env)
    root = {"Authorization": f"Bearer {out['root_key']}"}
    old_key_text = (data / "master.key").read_text()
    with serve(data, env=env) as server, server.client() as c:
        keys = []
        for name in ("before", "unused-until-after"):
            key = c.post(
                f"/v1/projects/{out['project_id']}/keys",
                json={"name": name, "environment": "live"},
                headers=root,
            ).json()
            made = c.post(f"/v1/keys/{key['id']}/signing-secret", headers=root)
            keys.append((key["id"], made.json()["signing_secret"]))
        body = b'{"delivery_mode": "poll"}'
        first = c.post("/v1/sessions", content=body, headers=signed(*keys[0], body))
        assert first.status_code == 201, first.text
        assert c.get("/v1/audit/checkpoint", headers=root).status_code == 200

        rotated = keyguard("master-key", "rotate", "--new", data=data, env=env)
        assert rotated.returncode == 0, rotated.stderr
        assert "every secret is sealed with master key" in rotated.stdout
        assert (data / "master.key").read_text() != old_key_text
        assert old_key_text.strip() in (data / "master.key.previous").read_text()

        # Still serving: a key first loaded now opens a secret re-sealed under the new
        # key (the server learns it from the data dir); the root key still verifies.
        later = c.post("/v1/sessions", content=body, headers=signed(*keys[1], body))
        assert later.status_code == 201, later.text
        assert c.get(f"/v1/keys/{keys[0][0]}", headers=root).status_code == 200

    status = keyguard("master-key", "status", data=data, env=env)
    assert status.returncode == 0, status.stderr
    assert "previous keys can be retired" in status.stdout
    (data / "master.key.previous").unlink()  # the old key is gone for good

    with serve(data, env=env) as server, server.client() as c:
        for key_id, secret in keys:
            body = f'{{"delivery_mode": "poll", "k": "{key_id}"}}'.encode()
            r = c.post("/v1/sessions", content=body, headers=signed(key_id, secret, body))
            assert r.status_code in (201, 422), r.text  # authenticated either way
            assert r.status_code != 401
        assert c.get("/v1/audit/checkpoint", headers=root).status_code == 200
        hook = c.post(f"/v1/projects/{out['project_id']}/webhook-secret/rotate", headers=root)
        assert hook.status_code in (200, 201, 404, 405), hook.text
    verified = keyguard("audit", "verify", data=data, env=env)
    assert verified.returncode == 0, verified.stderr


def test_rotate_new_is_refused_when_the_key_comes_from_the_environment(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYGUARD_")}
    init(data, env=env)
    with_env = {**env, "KEYGUARD_MASTER_KEY": (data / "master.key").read_text().strip()}
    r = keyguard("master-key", "rotate", "--new", data=data, env=with_env)
    assert r.returncode == 2
    assert "KEYGUARD_PREVIOUS_MASTER_KEYS" in r.stderr
    assert not (data / "master.key.previous").exists()
