"""A tiny ASGI app that echoes the ASGI TLS extension, served by keyguard.server.serve.

Run as ``python _echo_app.py DATA_DIR [--http] [--pinned] [--register PEM_FILE]...``:
HTTPS on a free loopback port (with ``--http`` also the redirect-only listener on another);
uvicorn logs the bound URLs. ``--pinned`` forces the fallback trust mode in which only
registered client certificates complete the handshake.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import ssl
from pathlib import Path
from typing import Any

from keyguard.crypto.tls import ensure_dev_certificates
from keyguard.server import ClientCertificateTrust, serve_forever


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    tls = scope.get("extensions", {}).get("tls")
    tls = dict(tls) if tls is not None else None  # a read-only mapping: one per connection
    chain = tls["client_cert_chain"] if tls else []
    fingerprint = hashlib.sha256(ssl.PEM_cert_to_DER_cert(chain[0])).hexdigest() if chain else None
    body = json.dumps({"scheme": scope["scheme"], "tls": tls, "fingerprint": fingerprint})
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body.encode()})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--http", action="store_true")
    parser.add_argument("--pinned", action="store_true")
    parser.add_argument("--register", type=Path, action="append", default=[])
    args = parser.parse_args()
    trust = ClientCertificateTrust(
        [path.read_text() for path in args.register], accept_unknown=not args.pinned
    )
    serve_forever(
        echo_app,
        host="127.0.0.1",
        port=0,
        certs=ensure_dev_certificates(args.data_dir),
        client_trust=trust,
        http_port=0 if args.http else None,
    )


if __name__ == "__main__":
    main()
