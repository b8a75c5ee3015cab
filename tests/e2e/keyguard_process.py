"""Run the real `keyguard` command in a subprocess: init, then serve over TLS."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

KEYGUARD = [sys.executable, "-m", "keyguard.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def init(data: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    r = subprocess.run(
        [
            *KEYGUARD,
            "init",
            "--email",
            "ops@example.com",
            "--password",
            "e2e password 123",
            "--json",
            "--data",
            str(data),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    return dict(json.loads(r.stdout))


@dataclass
class RunningServer:
    process: subprocess.Popen[bytes]
    url: str
    ca: Path
    log: Path

    def client(self, **kwargs: object) -> httpx.Client:
        context = ssl.create_default_context(cafile=str(self.ca))
        return httpx.Client(base_url=self.url, verify=context, timeout=10, **kwargs)  # type: ignore[arg-type]


@contextmanager
def serve(
    data: Path, *, env: dict[str, str] | None = None, start_timeout: float = 30.0
) -> Iterator[RunningServer]:
    port = free_port()
    log = data.parent / f"serve-{port}.log"
    ca = data / "tls" / "ca.pem"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*KEYGUARD, "serve", "--data", str(data), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env or dict(os.environ),
        )
    server = RunningServer(process, f"https://localhost:{port}", ca, log)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if process.poll() is not None:
                raise AssertionError(f"server exited early:\n{log.read_text()}")
            try:
                if ca.exists():
                    with server.client() as c:
                        if c.get("/v1/").status_code == 200:
                            break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"server did not start:\n{log.read_text()}")
            time.sleep(0.1)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
