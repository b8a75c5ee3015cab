"""Start-up of ``keyguard serve``: runtime, certificates, then the HTTPS server."""

from __future__ import annotations

import asyncio

import structlog
from starlette.types import ASGIApp

from keyguard.app import create_asgi
from keyguard.cli._config import server_logs, start_runtime
from keyguard.cli.gateway import gateway_app
from keyguard.crypto.tls import ensure_dev_certificates
from keyguard.restrictions.service import all_certificate_pems
from keyguard.server.run import serve
from keyguard.server.tls_context import ClientCertificateTrust
from keyguard.settings import Settings
from keyguard.webhooks.events import redact_url

log = structlog.get_logger("keyguard")


async def _main(settings: Settings) -> None:
    access_log = server_logs(settings)
    runtime = await start_runtime(settings)
    certs = ensure_dev_certificates(settings.data_dir)
    # Certificates registered on keys: needed by the TLS layer in its fallback mode, where
    # only they complete the handshake; new registrations are added as they happen.
    runtime.client_trust = ClientCertificateTrust(await all_certificate_pems(runtime))

    def listening(port: int) -> None:
        # With --port 0, the URLs handed out (upload pages, download links) name the port
        # really bound, not 0.
        if settings.port == 0:
            runtime.settings = runtime.settings.model_copy(update={"port": port})

    # With --gateway-upstream, the gateway runs here too: one process, so both doors
    # share replay caches, TOTP steps and rate limits even without Redis.
    also: list[tuple[str, ASGIApp, int]] = []
    if settings.gateway_upstream:
        gateway = gateway_app(runtime, settings.gateway_upstream)
        # Named in the log without userinfo or query, which may hold credentials.
        name = f"Gateway to {redact_url(gateway.upstream)}"
        also.append((name, gateway, settings.gateway_port))
    await serve(
        # The runtime outlives both listeners: closed below, once neither serves.
        create_asgi(runtime, close_runtime=False),
        host=settings.host,
        port=settings.port,
        certs=certs,
        client_trust=runtime.client_trust,
        http_port=settings.http_port,
        log_level=settings.log_level,
        on_listening=listening,
        also=also,
        access_log=access_log,
    )
    await runtime.close()


def run_server(settings: Settings) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings uvloop
        asyncio.run(_main(settings))
        return
    uvloop.run(_main(settings))
