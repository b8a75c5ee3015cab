"""A real ``keyguard serve`` subprocess on loopback, provisioned through its public API.

``keyguard init --json --data TMP`` then ``keyguard serve --data TMP --host 127.0.0.1
--port FREE``; the bench then creates what it needs with the root key over HTTPS, exactly
as a user's script would (CONTRACT §1, §3, §6).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0


@dataclass
class RunningServer:
    process: subprocess.Popen[bytes]
    base_url: str
    ca_cert: Path
    root_key: str
    project_id: str
    log: Path
    cpus: frozenset[int] | None  # the cores it is pinned to, if any

    def client(self, **kwargs: Any) -> httpx.Client:
        context = ssl.create_default_context(cafile=str(self.ca_cert))
        return httpx.Client(base_url=self.base_url, verify=context, timeout=10.0, **kwargs)

    def create_project_key(self, **spec: Any) -> dict[str, Any]:
        """``POST /v1/projects/PROJECT/keys`` with the root key; returns ``{id, key, ...}``."""
        body = {"name": "bench", "environment": "live", **spec}
        with self.client() as http:
            response = http.post(
                f"/v1/projects/{self.project_id}/keys",
                json=body,
                headers={"Authorization": f"Bearer {self.root_key}"},
            )
        response.raise_for_status()
        created: dict[str, Any] = response.json()
        return created

    def create_session(self, key: str) -> str:
        """``POST /v1/sessions`` with a project key (seed's own example); returns its id."""
        with self.client() as http:
            response = http.post(
                "/v1/sessions",
                json={"delivery_mode": "poll"},
                headers={"Authorization": f"Bearer {key}"},
            )
        response.raise_for_status()
        session_id: str = response.json()["id"]
        return session_id


def keyguard_command() -> list[str]:
    beside = Path(sys.executable).with_name("keyguard")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("keyguard")
    if found is None:
        raise RuntimeError("keyguard is not installed: run `make install-dev` first")
    return [found]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def pinned(command: Sequence[str], cpus: frozenset[int] | None) -> list[str]:
    """Prefix ``taskset`` so the process and every thread it starts stay on ``cpus``."""
    if not cpus or shutil.which("taskset") is None:
        return list(command)
    return ["taskset", "-c", ",".join(map(str, sorted(cpus))), *command]


def _init(data_dir: Path) -> dict[str, str]:
    out = subprocess.run(
        [
            *keyguard_command(),
            "init",
            "--json",
            "--data",
            str(data_dir),
            "--email",
            "bench@example.com",
            "--password",
            "bench-password-1",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, str] = json.loads(out.stdout)
    return result


def _wait_ready(server: RunningServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"keyguard serve exited: see {server.log}")
        try:
            with server.client() as http:
                if http.get("/v1/").status_code == 200:
                    return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"keyguard serve did not answer in {START_TIMEOUT_S:.0f} s: {server.log}")


@contextlib.contextmanager
def running_server(
    *,
    cpus: frozenset[int] | None = None,
    env: dict[str, str] | None = None,
    args: Sequence[str] = (),
) -> Iterator[RunningServer]:
    """Init a temporary data dir, serve it, yield it, then stop the server (SIGINT)."""
    with tempfile.TemporaryDirectory(prefix="keyguard-bench-serve-") as tmp:
        data_dir = Path(tmp) / "data"
        init = _init(data_dir)
        port = free_port()
        log = Path(tmp) / "serve.log"
        with log.open("wb") as log_file:
            process = subprocess.Popen(
                pinned(
                    [
                        *keyguard_command(),
                        "serve",
                        "--data",
                        str(data_dir),
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(port),
                        *args,
                    ],
                    cpus,
                ),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
            )
        server = RunningServer(
            process=process,
            base_url=f"https://127.0.0.1:{port}",
            ca_cert=Path(init["ca_cert"]),
            root_key=init["root_key"],
            project_id=init["project_id"],
            log=log,
            cpus=cpus,
        )
        try:
            _wait_ready(server)
            yield server
        finally:
            _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def running_bare_app(
    like: RunningServer, *, cpus: frozenset[int] | None = None
) -> Iterator[RunningServer]:
    """``bench/bare_app.py`` under uvicorn with ``like``'s TLS certificate and key (the
    same P-256 certificate, so the handshake and record costs match), no access log."""
    tls = like.ca_cert.parent
    port = free_port()
    log = like.log.with_name("bare.log")
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            pinned(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "bench.bare_app:app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--ssl-certfile",
                    str(tls / "server.pem"),
                    "--ssl-keyfile",
                    str(tls / "server.key"),
                    "--no-access-log",
                    "--log-level",
                    "warning",
                ],
                cpus,
            ),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parents[1],
        )
    server = dataclasses.replace(
        like, process=process, base_url=f"https://127.0.0.1:{port}", log=log, cpus=cpus
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with server.client() as http:
                    if http.get("/v1/sessions/probe").status_code == 200:
                        break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the bare app did not start: {log.read_text()}")
            time.sleep(0.2)
        yield server
    finally:
        _stop(process)
