"""Start-up of ``keyguard serve``: runtime, certificates, then the HTTPS server."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Coroutine
from typing import Any

import structlog
from starlette.types import ASGIApp

from keyguard.app import create_asgi
from keyguard.cli._config import ConfigurationError, server_logs, start_runtime
from keyguard.cli.gateway import gateway_app, log_operations, read_openapi
from keyguard.cli.workers import check_shared_state, supervise
from keyguard.crypto.tls import ensure_dev_certificates
from keyguard.restrictions.service import all_certificate_pems
from keyguard.server import logs
from keyguard.server.heap import freeze_startup_objects
from keyguard.server.run import Listeners, bind_listeners, serve
from keyguard.server.tls_context import ClientCertificateTrust
from keyguard.settings import Settings
from keyguard.webhooks.events import redact_url

log = structlog.get_logger("keyguard")


async def _main(settings: Settings, listeners: Listeners | None = None) -> None:
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
        routes = None
        if settings.gateway_openapi is not None:
            routes = read_openapi(settings.gateway_openapi)
            log_operations(settings.gateway_openapi, routes)
        gateway = gateway_app(runtime, settings.gateway_upstream, routes=routes)
        # Named in the log without userinfo or query, which may hold credentials.
        name = f"Gateway to {redact_url(gateway.upstream)}"
        also.append((name, gateway, settings.gateway_port))
    app = create_asgi(runtime, close_runtime=False)
    freeze_startup_objects()  # started: from here on, requests make what is collected
    await serve(
        # The runtime outlives both listeners: closed below, once neither serves.
        app,
        host=settings.host,
        port=settings.port,
        certs=certs,
        client_trust=runtime.client_trust,
        http_port=settings.http_port,
        log_level=settings.log_level,
        on_listening=listening,
        also=also,
        access_log=access_log,
        listeners=listeners,
    )
    await runtime.close()


def _run(coroutine: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings uvloop
        asyncio.run(coroutine)
        return
    uvloop.run(coroutine)


def run_server(settings: Settings, workers: int = 1) -> None:
    """``keyguard serve``: in this process, or in ``workers`` processes on shared sockets."""
    if workers == 1:
        _run(_main(settings))
        return
    check_shared_state(settings, workers)

    async def prepare() -> None:
        # Once, before the workers: migrations, a generated master key, certificates.
        runtime = await start_runtime(settings)
        await runtime.close()
        ensure_dev_certificates(settings.data_dir)

    _run(prepare())
    try:
        listeners = bind_listeners(
            settings.host,
            settings.port,
            http_port=settings.http_port,
            also_ports=[settings.gateway_port] if settings.gateway_upstream else [],
        )
    except OSError as error:
        raise ConfigurationError(f"cannot listen on port {settings.port}: {error}") from None
    # With --port 0, every worker names the port really bound in the URLs it hands out.
    bound = settings.model_copy(update={"port": listeners.https_port})
    # uvicorn announces pre-bound sockets nowhere; the same line as with one process.
    logs.configure(settings.log_level, settings.log_format)
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    logging.getLogger("uvicorn.error").info(
        "Uvicorn running on https://%s:%d (%d workers)", host, listeners.https_port, workers
    )
    sys.exit(supervise(workers, lambda: _run(_main(bound, listeners))))
