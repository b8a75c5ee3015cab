"""Servers on loopback that Keyguard's processes talk to in end-to-end tests: an upstream
that echoes what reached it, and where the gateway of ``serve`` says it listens."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

GATEWAY_ON = re.compile(r"Gateway to \S+ listening on (https://\S+)")


class EchoHandler(BaseHTTPRequestHandler):
    """Answers 200 with the request as it arrived: path, headers (lower-cased), body."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        payload = json.dumps({"path": self.path, "headers": headers, "body": body.decode()})
        data = payload.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        return


@contextmanager
def loopback(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """``handler`` served on 127.0.0.1 (a free port) in a thread: its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def gateway_url(log: Path, timeout: float = 30.0) -> str:
    """The URL ``keyguard serve --gateway-upstream`` logged for its gateway."""
    deadline = time.monotonic() + timeout
    while not (match := GATEWAY_ON.search(log.read_text(errors="replace"))):
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    return match[1]
