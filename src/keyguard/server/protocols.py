"""uvicorn HTTP protocols that hand the TLS connection to the app (ASGI TLS extension).

No ASGI server reports the peer certificate today, so these subclasses of uvicorn's
protocols read it once per connection, right after the handshake, and put it in every
request's ``scope["extensions"]["tls"]`` as the ASGI TLS extension (asgiref
``specs/tls.rst``) describes::

    {"server_cert": PEM | None, "client_cert_chain": [PEM, ...], "client_cert_name":
     "CN=x" | None, "client_cert_error": None, "tls_version": 0x0304, "cipher_suite": 0x1302}

The extension is built once per connection and shared by its requests read-only (a
``MappingProxyType`` whose chain is a tuple): no request's app can alter what the next
request on the connection sees, and none pays for a copy.

``client_cert_chain`` holds the client's own certificate (Python's ``ssl`` exposes only
the leaf before 3.13); it is ``[]`` when none was presented. ``client_cert_error`` is
always None: the handshake does not judge client certificates, the policy engine does
(see :class:`~keyguard.server.tls_context.ClientCertificateTrust`). Plain-HTTP
connections get no ``tls`` extension, as the spec requires.

Use with ``uvicorn.Config(app, http=TLSHttpToolsProtocol, ssl_context_factory=...)``.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, cast

from cryptography import x509
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from keyguard.server.tls_context import ServerSSLContext

if TYPE_CHECKING:
    from uvicorn._types import ASGI3Application, ASGIReceiveCallable, ASGISendCallable, Scope

__all__ = ["TLSH11Protocol", "TLSHttpToolsProtocol", "tls_extension"]

# ssl.SSLObject.version() -> the protocol version number on the wire (RFC 8446 §4.2.1).
_TLS_VERSIONS = {"TLSv1": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


def tls_extension(transport: asyncio.BaseTransport) -> Mapping[str, Any] | None:
    """The ASGI TLS extension for a connection (read-only), or None when it is not over TLS."""
    ssl_object = transport.get_extra_info("ssl_object")
    if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
        return None
    context = ssl_object.context
    der = ssl_object.getpeercert(binary_form=True)
    chain: list[str] = []
    name: str | None = None
    error: str | None = None
    if der:
        chain.append(ssl.DER_cert_to_PEM_cert(der))
        try:
            name = x509.load_der_x509_certificate(der).subject.rfc4514_string()
        except ValueError:
            # OpenSSL accepted it but cryptography cannot parse it: report, let the engine refuse.
            error = "unparsable client certificate"
    cipher = ssl_object.cipher()
    version = ssl_object.version()
    return MappingProxyType(
        {
            "server_cert": (
                context.server_cert_pem if isinstance(context, ServerSSLContext) else None
            ),
            "client_cert_chain": tuple(chain),
            "client_cert_name": name,
            "client_cert_error": error,
            "tls_version": _TLS_VERSIONS.get(version) if version else None,
            "cipher_suite": _cipher_suite_id(context, cipher[0]) if cipher else None,
        }
    )


def _cipher_suite_id(context: ssl.SSLContext, name: str) -> int | None:
    if isinstance(context, ServerSSLContext) and name in context.cipher_suite_ids:
        return context.cipher_suite_ids[name]
    # get_ciphers() ids are 0x0300XXXX; the low 16 bits are the IANA suite number.
    return next((c["id"] & 0xFFFF for c in context.get_ciphers() if c["name"] == name), None)


def _with_tls(app: ASGI3Application, tls: Mapping[str, Any]) -> ASGI3Application:
    async def app_with_tls(
        scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] in ("http", "websocket"):
            _add_tls(scope, tls)
        await app(scope, receive, send)

    return app_with_tls


def _add_tls(scope: Scope | dict[str, Any], tls: Mapping[str, Any]) -> None:
    # A fresh extensions dict per request (an app may add its own); the extension itself
    # is the connection's, read-only.
    extensions: dict[str, Any] | None = scope.get("extensions")  # type: ignore[assignment]
    cast("dict[str, Any]", scope)["extensions"] = (
        {**extensions, "tls": tls} if extensions else {"tls": tls}
    )


class CoalescingTransport:
    """A connection's transport whose writes in one event-loop iteration leave together.

    uvicorn writes a response's head and its body separately: over TLS that is two
    records and two ``send`` calls per response, and the system call (on loopback, the
    receiver's TCP processing too) was the largest single cost of a request in the
    profile. Buffered until the end of the loop iteration, they become one record and
    one call; nothing waits longer than the iteration that wrote it. Everything else is
    the real transport's (flow control pauses and resumes the real one).
    """

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(data)

    def flush(self) -> None:
        pending = self._pending
        if pending:
            self._pending = []
            if not self._transport.is_closing():
                self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending = []
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class TLSHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, plus the ASGI TLS extension in every scope, and
    its writes coalesced (:class:`CoalescingTransport`)."""

    _tls: Mapping[str, Any] | None = None

    def connection_made(  # type: ignore[override]
        self, transport: asyncio.Transport
    ) -> None:
        super().connection_made(transport)
        # The handshake is complete when the protocol is attached, so the peer is known now.
        self._tls = tls_extension(transport)
        self.transport = cast("asyncio.Transport", CoalescingTransport(transport, self.loop))

    def on_message_begin(self) -> None:
        # Where uvicorn builds each request's scope: no wrapper around the app per request.
        super().on_message_begin()
        if self._tls is not None:
            _add_tls(self.scope, self._tls)


class TLSH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, plus the ASGI TLS extension in every scope."""

    def connection_made(  # type: ignore[override]
        self, transport: asyncio.Transport
    ) -> None:
        super().connection_made(transport)
        tls = tls_extension(transport)
        if tls is not None:
            self.app = _with_tls(self.app, tls)
