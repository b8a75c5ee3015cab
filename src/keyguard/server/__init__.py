"""The HTTPS serving layer: the edge, TLS context, client-certificate hand-off, logs, uvicorn glue.

Example::

    from keyguard.crypto.tls import ensure_dev_certificates
    from keyguard.server import ClientCertificateTrust, serve_forever

    serve_forever(app, host="localhost", port=8443,
                  certs=ensure_dev_certificates(data_dir),
                  client_trust=ClientCertificateTrust())
"""

from keyguard.server.hsts import HttpsRedirectApp
from keyguard.server.protocols import TLSH11Protocol, TLSHttpToolsProtocol, tls_extension
from keyguard.server.run import serve, serve_forever
from keyguard.server.tls_context import (
    ClientCertificateTrust,
    ServerCertificate,
    ServerSSLContext,
    build_server_context,
)

__all__ = [
    "ClientCertificateTrust",
    "HttpsRedirectApp",
    "ServerCertificate",
    "ServerSSLContext",
    "TLSH11Protocol",
    "TLSHttpToolsProtocol",
    "build_server_context",
    "serve",
    "serve_forever",
    "tls_extension",
]
