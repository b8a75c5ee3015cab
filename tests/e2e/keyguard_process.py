"""Run the real `keyguard` command in a subprocess: init, then serve over TLS.

Servers are started on port 0 and the test reads the port the server really bound from its
log line (``Uvicorn running on https://127.0.0.1:N``): picking a free port, releasing it and
letting the child bind it later races with every other process on the machine.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
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


# uvicorn's start-up line, printed once the listening socket is bound.
RUNNING_ON = re.compile(r"Uvicorn running on (https?://\S+)")
_logs = itertools.count()


def reported_url(
    process: subprocess.Popen[bytes], log: Path, *, offset: int = 0, timeout: float = 30.0
) -> str:
    """The URL a server started with ``--port 0`` reports in ``log`` (read from ``offset``,
    so a log shared by a restarted server yields the new process's address)."""
    deadline = time.monotonic() + timeout
    while True:
        text = log.read_bytes()[offset:].decode(errors="replace")
        match = RUNNING_ON.search(text)
        if match:
            return match[1]
        if process.poll() is not None:
            raise AssertionError(f"server exited early:\n{text}")
        if time.monotonic() > deadline:
            raise AssertionError(f"server did not report its address:\n{text}")
        time.sleep(0.1)


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
    data: Path,
    *args: str,
    env: dict[str, str] | None = None,
    start_timeout: float = 30.0,
) -> Iterator[RunningServer]:
    """``keyguard serve`` on a port of its choosing, with extra command-line ``args``."""
    log = data.parent / f"serve-{os.getpid()}-{next(_logs)}.log"
    ca = data / "tls" / "ca.pem"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*KEYGUARD, "serve", "--data", str(data), "--host", "127.0.0.1", "--port", "0", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env or dict(os.environ),
        )
    try:
        deadline = time.monotonic() + start_timeout
        url = reported_url(process, log, timeout=start_timeout)
        server = RunningServer(process, url, ca, log)
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
