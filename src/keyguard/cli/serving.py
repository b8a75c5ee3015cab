"""Start-up of ``keyguard serve``: runtime, certificates, then the HTTPS server."""

from __future__ import annotations

import asyncio

import structlog

from keyguard.api.app import create_asgi
from keyguard.crypto.tls import ensure_dev_certificates
from keyguard.runtime import Runtime
from keyguard.server.run import serve
from keyguard.server.tls_context import ClientCertificateTrust
from keyguard.services.restrictions import all_certificate_pems
from keyguard.settings import Settings

log = structlog.get_logger("keyguard")


async def _main(settings: Settings) -> None:
    runtime = await Runtime.start(settings)
    certs = ensure_dev_certificates(settings.data_dir)
    # Certificates registered on keys: needed by the TLS layer in its fallback mode, where
    # only they complete the handshake; new registrations are added as they happen.
    runtime.client_trust = ClientCertificateTrust(await all_certificate_pems(runtime))

    def listening(port: int) -> None:
        # With --port 0, the URLs handed out (upload pages, download links) name the port
        # really bound, not 0.
        if settings.port == 0:
            runtime.settings = runtime.settings.model_copy(update={"port": port})

    await serve(
        create_asgi(runtime),
        host=settings.host,
        port=settings.port,
        certs=certs,
        client_trust=runtime.client_trust,
        http_port=settings.http_port,
        log_level=settings.log_level,
        on_listening=listening,
    )


def run_server(settings: Settings) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings uvloop
        asyncio.run(_main(settings))
        return
    uvloop.run(_main(settings))
