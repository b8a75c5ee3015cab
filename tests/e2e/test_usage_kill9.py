"""Usage survives the real server's restarts: a clean stop loses nothing, and kill -9 loses
at most what was counted since the last flush (nothing, once a flush interval passed)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from keyguard_process import init, serve

pytestmark = pytest.mark.e2e

FLUSH_SECONDS = "1"


def test_counts_survive_kill_9_after_a_flush_and_a_clean_stop(tmp_path: Path) -> None:
    data = tmp_path / "data"
    created = init(data)
    root = {"Authorization": f"Bearer {created['root_key']}"}
    env = {**os.environ, "KEYGUARD_USAGE_FLUSH_SECONDS": FLUSH_SECONDS}
    with serve(data, env=env) as server, server.client() as client:
        key = client.post(
            f"/v1/projects/{created['project_id']}/keys",
            json={"name": "kill-9", "environment": "live"},
            headers=root,
        ).json()
        for _ in range(30):
            r = client.post(
                "/v1/sessions",
                json={"delivery_mode": "poll"},
                headers={"Authorization": f"Bearer {key['key']}"},
            )
            assert r.status_code == 201, r.text
        time.sleep(float(FLUSH_SECONDS) * 2.5)  # a flush has happened since
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=10)
    with serve(data, env=env) as server, server.client() as client:
        usage = client.get(f"/v1/keys/{key['id']}/usage", headers=root).json()
        assert usage["totals"]["requests"] == 30
        for _ in range(12):
            client.post(
                "/v1/sessions",
                json={"delivery_mode": "poll"},
                headers={"Authorization": f"Bearer {key['key']}"},
            )
    # The context above stopped the server cleanly (SIGTERM): its last counts flushed.
    with serve(data, env=env) as server, server.client() as client:
        usage = client.get(f"/v1/keys/{key['id']}/usage", headers=root).json()
        assert usage["totals"]["requests"] == 42
