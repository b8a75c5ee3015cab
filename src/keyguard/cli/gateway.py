"""Start-up of ``keyguard gateway``: runtime, certificates, the gateway app over HTTPS."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from keyguard.cli._config import ConfigurationError, server_logs, start_runtime
from keyguard.crypto.tls import ensure_dev_certificates
from keyguard.gateway import Gateway, upstream_base
from keyguard.gateway.openapi import OpenApiError, load_route_table
from keyguard.gateway.routes import RouteTable
from keyguard.restrictions.service import all_certificate_pems
from keyguard.runtime import Runtime
from keyguard.server.run import serve
from keyguard.server.tls_context import ClientCertificateTrust
from keyguard.settings import Settings

DEFAULT_GATEWAY_PORT = 8444
PER_PROCESS_STATE_WARNING = (
    "KEYGUARD_REDIS_URL is not set: the gateway's replay caches, TOTP code reuse and rate "
    "limits are per process (not shared with keyguard serve); set KEYGUARD_REDIS_URL to "
    "make them global, or run the gateway inside keyguard serve (--gateway-upstream)"
)

log = logging.getLogger("keyguard.gateway")


def warn_if_state_is_per_process(settings: Settings) -> None:
    if not settings.redis_url:
        log.warning(PER_PROCESS_STATE_WARNING)


def gateway_app(
    runtime: Runtime,
    upstream: str,
    *,
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
    routes: RouteTable | None = None,
) -> Gateway:
    """The gateway in front of ``upstream``, configured from the runtime's settings (for
    ``keyguard gateway``, and for ``keyguard serve --gateway-upstream``); ``routes``: the
    operations of ``--openapi``'s document."""
    return Gateway(
        engine=runtime.engine,
        upstream=upstream,
        header_prefix=runtime.settings.header_prefix,
        trusted_proxies=runtime.trusted_proxies,
        client_cert_header=runtime.client_cert_header,
        max_signed_body_bytes=runtime.settings.max_body_bytes,
        on_shutdown=on_shutdown,
        routes=routes,
    )


def read_openapi(path: Path) -> RouteTable:
    """``--openapi``'s document as a route table; what is wrong with it, as a
    ``ConfigurationError`` (so the gateway never starts half-enforcing it)."""
    try:
        return load_route_table(path)
    except OpenApiError as error:
        raise ConfigurationError(f"--openapi {error}") from None


def log_operations(path: Path, routes: RouteTable) -> None:
    # An operation without requirements is open to anyone: say how many at start-up.
    open_ = sum(any(a.anonymous for a in op.security) for op in routes.operations)
    log.info(
        "enforcing %d operations of %s (%d need no credentials; any other is refused)",
        len(routes.operations),
        path,
        open_,
    )


async def _main(
    settings: Settings, upstream: str, port: int, openapi: tuple[Path, RouteTable] | None
) -> None:
    access_log = server_logs(settings)
    warn_if_state_is_per_process(settings)
    routes = None
    if openapi is not None:
        path, routes = openapi
        log_operations(path, routes)
    runtime = await start_runtime(settings)
    trust = ClientCertificateTrust(await all_certificate_pems(runtime))
    runtime.client_trust = trust
    app = gateway_app(runtime, upstream, on_shutdown=runtime.close, routes=routes)
    await serve(
        app,
        host=settings.host,
        port=port,
        certs=ensure_dev_certificates(settings.data_dir),
        client_trust=trust,
        http_port=settings.http_port,
        log_level=settings.log_level,
        access_log=access_log,
    )


def run_gateway(
    settings: Settings, upstream: str, port: int, *, openapi: Path | None = None
) -> None:
    try:
        upstream_base(upstream)  # a bad URL fails before anything starts
    except ValueError as error:
        raise ConfigurationError(str(error)) from None
    # So does a document the gateway cannot enforce; read once, here, for good.
    routes = None if openapi is None else (openapi, read_openapi(openapi))
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings uvloop
        asyncio.run(_main(settings, upstream, port, routes))
        return
    uvloop.run(_main(settings, upstream, port, routes))
