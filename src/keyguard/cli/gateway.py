"""Start-up of ``keyguard gateway``: runtime, certificates, the gateway app over HTTPS."""

from __future__ import annotations

import asyncio

from keyguard.crypto.tls import ensure_dev_certificates
from keyguard.gateway import Gateway, upstream_base
from keyguard.runtime import Runtime
from keyguard.server.run import serve
from keyguard.server.tls_context import ClientCertificateTrust
from keyguard.services.restrictions import all_certificate_pems
from keyguard.settings import Settings

DEFAULT_GATEWAY_PORT = 8444


async def _main(settings: Settings, upstream: str, port: int) -> None:
    runtime = await Runtime.start(settings)
    trust = ClientCertificateTrust(await all_certificate_pems(runtime))
    runtime.client_trust = trust
    app = Gateway(
        engine=runtime.engine,
        upstream=upstream,
        header_prefix=settings.header_prefix,
        trusted_proxies=runtime.trusted_proxies,
        max_signed_body_bytes=settings.max_body_bytes,
        on_shutdown=runtime.close,
    )
    await serve(
        app,
        host=settings.host,
        port=port,
        certs=ensure_dev_certificates(settings.data_dir),
        client_trust=trust,
        http_port=settings.http_port,
        log_level=settings.log_level,
    )


def run_gateway(settings: Settings, upstream: str, port: int) -> None:
    upstream_base(upstream)  # a bad URL fails before anything starts
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings uvloop
        asyncio.run(_main(settings, upstream, port))
        return
    uvloop.run(_main(settings, upstream, port))
