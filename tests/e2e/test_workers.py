"""``keyguard serve --workers N`` (CONTRACT §11): N processes on one port, state shared.

Every request here opens its own connection, so the kernel spreads them over the
workers; a rate limit counted per worker would let through N times the limit.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest
from keyguard_process import KEYGUARD, init, serve

from helpers import redis_url

pytestmark = pytest.mark.redis


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "--ppid", str(pid), "-o", "pid="], capture_output=True, text=True)
    return [int(line) for line in out.stdout.split()]


def test_embedded_state_with_several_workers_is_refused_plainly(tmp_path: Path):
    data = tmp_path / "data"
    init(data)
    env = {k: v for k, v in os.environ.items() if k != "KEYGUARD_REDIS_URL"}
    r = subprocess.run(
        [*KEYGUARD, "serve", "--data", str(data), "--port", "0", "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert r.returncode == 2
    assert "--workers 2 needs KEYGUARD_REDIS_URL" in r.stderr
    assert "Uvicorn running" not in r.stdout + r.stderr


def test_workers_share_one_port_and_one_rate_limit_and_stop_together(tmp_path: Path):
    data = tmp_path / "data"
    env = dict(os.environ, KEYGUARD_REDIS_URL=redis_url())
    created = init(data, env=env)
    root = {"Authorization": f"Bearer {created['root_key']}"}
    with serve(data, "--workers", "2", env=env) as server:
        workers = _children(server.process.pid)
        assert len(workers) == 2, server.log.read_text()
        with server.client() as c:
            key = c.post(
                f"/v1/projects/{created['project_id']}/keys",
                json={
                    "name": "limited",
                    "environment": "live",
                    "rate_limit": {"limit": 5, "period_seconds": 600},
                },
                headers=root,
            )
            assert key.status_code == 201, key.text
            key = key.json()
            session = c.post(
                "/v1/sessions",
                json={"delivery_mode": "poll"},
                headers={"Authorization": f"Bearer {key['key']}"},
            )
            assert session.status_code == 201, session.text
        statuses = []
        for _ in range(8):
            with server.client() as fresh:  # a new connection: any worker may take it
                r = fresh.get(
                    f"/v1/sessions/{session.json()['id']}",
                    headers={"Authorization": f"Bearer {key['key']}"},
                )
                statuses.append(r.status_code)
        # The session's creation spent one of the five: four more, then 429 everywhere.
        assert statuses == [200] * 4 + [429] * 4
        started = re.findall(r"Started server process \[(\d+)\]", server.log.read_text())
        assert sorted(map(int, started)) == sorted(workers)
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=30) == 0
        assert all(not Path(f"/proc/{pid}").exists() for pid in workers)
