"""Running the app over HTTPS with uvicorn, plus the optional redirect-only HTTP listener.

Example (what ``keyguard serve`` does)::

    certs = ensure_dev_certificates(settings.data_dir)
    trust = ClientCertificateTrust(registered_pems)
    serve_forever(app, host=settings.host, port=settings.port, certs=certs,
                  client_trust=trust, http_port=settings.http_port)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import ssl
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Literal

import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import HANDLED_SIGNALS

from keyguard.crypto.tls import DevCertificates
from keyguard.server import logs
from keyguard.server.access_log import AccessLog
from keyguard.server.edge import Edge
from keyguard.server.hsts import HttpsRedirectApp
from keyguard.server.logs import LogFormat
from keyguard.server.protocols import TLSHttpToolsProtocol
from keyguard.server.tls_context import (
    ClientCertificateTrust,
    ServerCertificate,
    build_server_context,
)

__all__ = ["serve", "serve_forever"]

logger = logging.getLogger("uvicorn.error")

# Long enough for in-flight requests to finish, short enough that a stuck client cannot
# hold a deploy hostage.
GRACEFUL_SHUTDOWN_SECONDS = 10


class _Server(uvicorn.Server):
    """uvicorn's Server without its own signal handling.

    Each uvicorn Server installs SIGINT/SIGTERM handlers that replace the previous ones, so
    with two listeners only the last would hear the signal; :func:`serve` installs one
    handler that stops them all.
    """

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.listening.set()


async def serve(
    app: ASGIApp,
    *,
    host: str,
    port: int,
    certs: DevCertificates | ServerCertificate,
    client_trust: ClientCertificateTrust,
    http_port: int | None = None,
    log_level: str = "info",
    on_listening: Callable[[int], None] | None = None,
    also: Sequence[tuple[str, ASGIApp, int]] = (),
    access_log: AccessLog | None = None,
    listeners: Listeners | None = None,
) -> None:
    """Serve ``app`` over HTTPS until SIGINT/SIGTERM, then shut down gracefully and return.

    Every app is served behind an :class:`~keyguard.server.edge.Edge` (``app`` may already
    be one): every HTTPS response carries HSTS, every response an ``X-Request-Id``, and
    every request goes to ``access_log`` when one is given (uvicorn's own access log is
    off). Every request scope carries the ASGI TLS extension (with the client
    certificate, if one was presented). With ``listeners`` (``keyguard serve --workers
    N``), the sockets are already bound, shared by every worker process, and ``port``,
    ``http_port`` and the ports in ``also`` are not bound again. With ``http_port``, a plain-HTTP
    listener on the same host redirects GET/HEAD to HTTPS and refuses anything else with
    403 ``https_required``; it never reaches ``app``. ``port=0`` picks a free port;
    ``on_listening`` is called with the HTTPS port once it is bound. ``also`` holds more
    ``(name, app, port)`` listeners served the same way (same host, TLS and client
    certificates): ``keyguard serve --gateway-upstream`` runs the gateway beside the API,
    in one process, so both doors share the in-process state.
    Exits with status 3 (uvicorn's convention) when a port cannot be bound.
    """
    cert_file, key_file, ca_file = _certificate_paths(certs)
    ssl_context = build_server_context(cert_file, key_file, client_trust)
    https = _Server(
        _config(
            _edge(app, access_log),
            host=host,
            port=port,
            log_level=log_level,
            http=TLSHttpToolsProtocol,
            lifespan="auto",
            ssl_context=ssl_context,
        )
    )
    _announce(ca_file, client_trust)
    servers: list[_Server] = [https]
    with _signals_stop(servers):
        tasks = [asyncio.create_task(https.serve(sockets=_one(listeners, "https")))]
        try:
            # The redirect needs the port HTTPS really bound (port=0 in tests).
            await _until_listening(https, tasks[0])
            if on_listening is not None and https.started:
                on_listening(_bound_port(https))
            for index, (name, extra_app, extra_port) in enumerate(also if https.started else ()):
                extra = _Server(
                    _config(
                        _edge(extra_app, access_log),
                        host=host,
                        port=extra_port,
                        log_level=log_level,
                        http=TLSHttpToolsProtocol,
                        lifespan="auto",
                        ssl_context=ssl_context,
                    )
                )
                servers.append(extra)
                extra_sockets = [listeners.also[index]] if listeners is not None else None
                tasks.append(asyncio.create_task(extra.serve(sockets=extra_sockets)))
                await _until_listening(extra, tasks[-1])
                if extra.started:
                    logger.info("%s listening on https://%s", name, _address(extra, host))
            if http_port is not None and https.started:
                redirect = HttpsRedirectApp(https_port=_bound_port(https), host=host)
                plain = _Server(
                    _config(
                        _edge(redirect, access_log),
                        host=host,
                        port=http_port,
                        log_level=log_level,
                        http=HttpToolsProtocol,
                        lifespan="off",
                    )
                )
                servers.append(plain)
                tasks.append(asyncio.create_task(plain.serve(sockets=_one(listeners, "http"))))
            # Either listener stopping (signal, fatal error) stops the other.
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for server in servers:
                server.should_exit = True
            results = await asyncio.gather(*tasks, return_exceptions=True)
            if access_log is not None:
                access_log.flush()
    for result in results:
        if isinstance(result, BaseException):
            raise result


def serve_forever(
    app: ASGIApp,
    *,
    host: str,
    port: int,
    certs: DevCertificates | ServerCertificate,
    client_trust: ClientCertificateTrust,
    http_port: int | None = None,
    log_level: str = "info",
    log_format: LogFormat = "text",
) -> None:
    """Blocking :func:`serve` on a uvloop event loop (asyncio's when uvloop is missing),
    with the log configured (:func:`keyguard.server.logs.configure`) and an access log."""
    logs.configure(log_level, log_format)
    coroutine = serve(
        app,
        host=host,
        port=port,
        certs=certs,
        client_trust=client_trust,
        http_port=http_port,
        log_level=log_level,
        access_log=AccessLog(log_format=log_format),
    )
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings uvloop
        asyncio.run(coroutine)
        return
    uvloop.run(coroutine)


@dataclass(frozen=True)
class Listeners:
    """Sockets bound once, before the worker processes start: every worker accepts
    connections on the same ports (the kernel hands each connection to one of them)."""

    https: socket.socket
    http: socket.socket | None = None
    also: tuple[socket.socket, ...] = ()

    @property
    def https_port(self) -> int:
        port: int = self.https.getsockname()[1]
        return port


def bind_listeners(
    host: str, port: int, *, http_port: int | None = None, also_ports: Sequence[int] = ()
) -> Listeners:
    """Bind (without accepting) the sockets ``serve`` would bind; ``OSError`` if a port is
    taken."""
    return Listeners(
        https=_bind(host, port),
        http=_bind(host, http_port) if http_port is not None else None,
        also=tuple(_bind(host, extra) for extra in also_ports),
    )


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _one(
    listeners: Listeners | None, which: Literal["https", "http"]
) -> list[socket.socket] | None:
    if listeners is None:
        return None
    sock = listeners.https if which == "https" else listeners.http
    return [sock] if sock is not None else None


def _edge(app: ASGIApp, access_log: AccessLog | None) -> Edge:
    if not isinstance(app, Edge):
        # The gateway and the redirect listener: headers and the access log only; their
        # caching policy is their own (the upstream's, or the redirect's no-store).
        app = Edge(app, default_no_store=False)
    app.access_log = access_log
    return app


def _config(
    app: ASGIApp,
    *,
    host: str,
    port: int,
    log_level: str,
    http: type[asyncio.Protocol],
    lifespan: Literal["auto", "off"],
    ssl_context: ssl.SSLContext | None = None,
) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        http=http,
        lifespan=lifespan,
        # Our context is built once, with the client-certificate trust bound to it.
        ssl_context_factory=(lambda _config, _default: ssl_context) if ssl_context else None,
        # Keyguard resolves the client IP itself (KEYGUARD_TRUSTED_PROXIES, empty by
        # default); uvicorn's proxy headers trust 127.0.0.1 and would let any local process
        # spoof X-Forwarded-For past an IP allowlist.
        proxy_headers=False,
        server_header=False,
        # The edge writes the access log (batched, no query strings); the log's handlers
        # are configured once by keyguard.server.logs, not by uvicorn.
        access_log=False,
        log_config=None,
        # WebSocket upgrades would bypass the TLS-extension hook; the API has no sockets.
        ws="none",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )


def _certificate_paths(
    certs: DevCertificates | ServerCertificate,
) -> tuple[Path, Path, Path | None]:
    if isinstance(certs, DevCertificates):
        return certs.server_cert, certs.server_key, certs.ca_cert
    return certs.cert_file, certs.key_file, certs.ca_file


def _announce(ca_file: Path | None, client_trust: ClientCertificateTrust) -> None:
    if ca_file is not None:
        # Printed, not logged: the path must show whatever the log level.
        ca = ca_file.resolve()
        print(f"Keyguard CA certificate: {ca}  (e.g. curl --cacert {ca} ...)", file=sys.stderr)
        sys.stderr.flush()
    if client_trust.accepts_unknown:
        logger.info("Client certificates: requested; any certificate reaches the policy engine")
    else:
        logger.warning(
            "Client certificates: requested; only registered ones complete the TLS handshake"
        )


async def _until_listening(server: _Server, task: asyncio.Task[None]) -> None:
    """Until ``server`` has bound its socket, or stopped trying (``task`` ended)."""
    listening = asyncio.create_task(server.listening.wait())
    await asyncio.wait([listening, task], return_when=asyncio.FIRST_COMPLETED)
    listening.cancel()


def _address(server: uvicorn.Server, host: str) -> str:
    name = f"[{host}]" if ":" in host else host
    return f"{name}:{_bound_port(server)}"


def _bound_port(server: uvicorn.Server) -> int:
    port: int = server.servers[0].sockets[0].getsockname()[1]
    return port


@contextlib.contextmanager
def _signals_stop(servers: list[_Server]) -> Iterator[None]:
    """Route SIGINT/SIGTERM to every server in ``servers`` (read when the signal arrives)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals only reach the main thread; the caller stops us by cancelling
        return

    def stop_all(sig: int, frame: FrameType | None) -> None:
        for server in servers:
            # First SIGINT: graceful; a second one forces exit (uvicorn's behaviour).
            server.handle_exit(sig, frame)

    # signal.signal (not loop.add_signal_handler) so the previous handlers can be restored.
    previous = {sig: signal.signal(sig, stop_all) for sig in HANDLED_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
