"""The server's ``ssl.SSLContext``: TLS 1.2 minimum, and client certificates requested.

Keyguard pins client certificates per key by the SHA-256 of their DER (CONTRACT §4): the
policy engine, not the handshake, decides whether a certificate is acceptable, so that a
missing, expired or unknown certificate becomes an HTTP 403 with a problem+json body
instead of a TLS alert nobody can read. The handshake therefore only *collects* the
certificate; see :class:`ClientCertificateTrust` for how, and for its one limitation.
"""

from __future__ import annotations

import ctypes
import logging
import ssl
import sys
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

__all__ = [
    "ClientCertificateTrust",
    "ServerCertificate",
    "ServerSSLContext",
    "build_server_context",
]

logger = logging.getLogger("keyguard.server")

# X509_V_FLAG_PARTIAL_CHAIN is ssl.VERIFY_X509_PARTIAL_CHAIN; OpenSSL's X509_V_FLAG_NO_CHECK_TIME
# has no name in the ssl module. Together they let a registered certificate (self-signed or
# not, expired or not) verify as its own trust anchor in the fallback mode below.
_X509_V_FLAG_NO_CHECK_TIME = 0x200000

# TLS 1.2 suites: forward secrecy and AEAD only (Mozilla "intermediate"). TLS 1.3 suites are
# all strong and keep OpenSSL's defaults.
_TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL"


@dataclass(frozen=True, slots=True)
class ServerCertificate:
    """An operator-supplied server certificate (chain) and key, instead of the dev CA's."""

    cert_file: Path
    key_file: Path
    ca_file: Path | None = None  # only printed at start-up, for clients to trust


class ServerSSLContext(ssl.SSLContext):
    """An ``SSLContext`` that also remembers what the ASGI TLS extension reports."""

    server_cert_pem: str | None = None
    # OpenSSL cipher name -> IANA cipher suite number, e.g. "TLS_AES_128_GCM_SHA256" -> 0x1301.
    cipher_suite_ids: Mapping[str, int] = MappingProxyType({})


def build_server_context(
    cert_file: Path, key_file: Path, client_trust: ClientCertificateTrust
) -> ServerSSLContext:
    """A server context: TLS >= 1.2, HTTP/1.1 ALPN, client certificates requested, not required.

    ``client_trust`` is bound to the context, so certificates registered later through it
    take effect on new handshakes without a restart.
    """
    context = ServerSSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(_TLS12_CIPHERS)
    # Client-initiated renegotiation is a cheap CPU-exhaustion vector and HTTP/1.1 needs none.
    context.options |= ssl.OP_NO_RENEGOTIATION
    context.load_cert_chain(cert_file, key_file)
    context.set_alpn_protocols(["http/1.1"])
    context.server_cert_pem = _first_pem(Path(cert_file).read_text())
    # get_ciphers() ids are 0x0300XXXX; the low 16 bits are the IANA suite number.
    context.cipher_suite_ids = {c["name"]: c["id"] & 0xFFFF for c in context.get_ciphers()}
    client_trust.bind(context)
    return context


class ClientCertificateTrust:
    """Which client certificates may complete the TLS handshake.

    Client certificates are *requested* (``CERT_OPTIONAL``): a client without one connects
    normally. Python's ``ssl`` module has no verify callback, so by default ("accept any")
    :meth:`bind` installs OpenSSL's certificate-verify callback through ``ctypes`` with one
    that accepts every chain: any certificate the client proves it holds the key for --
    self-signed, expired, unknown -- completes the handshake and reaches the application in
    ``scope["extensions"]["tls"]``, where the policy engine compares its fingerprint with the
    key's pinned ones and answers 403 when it does not match. The handshake still proves
    possession of the private key (CertificateVerify), which is all pinning needs.

    If that callback cannot be installed (not CPython, OpenSSL linked statically without
    exported symbols, a layout check fails) or ``accept_unknown=False`` is passed, the
    fallback mode applies: the trust anchors are the registered certificates themselves
    (``VERIFY_X509_PARTIAL_CHAIN`` plus ``X509_V_FLAG_NO_CHECK_TIME`` so expired ones still
    pass). In that mode a client presenting a certificate that was never registered FAILS
    THE HANDSHAKE (TLS alert, no HTTP response); a client presenting no certificate, or a
    registered one (even expired), gets an HTTP answer. :attr:`accepts_unknown` tells which
    mode is in force; the server logs it at start-up.

    Call :meth:`add_pem` when a certificate is registered and :meth:`replace_all` after
    loading them from the database. OpenSSL cannot remove a trust anchor from a live
    context, so in the fallback mode a deleted certificate still completes the handshake
    until restart (the engine refuses it anyway). In the default mode these calls only
    keep the record; they never make the handshake stricter.
    """

    def __init__(self, pems: Iterable[str | bytes] = (), *, accept_unknown: bool = True) -> None:
        self._accept_unknown = accept_unknown
        self._hook_failed = False
        self._contexts: list[ssl.SSLContext] = []
        self._pems: dict[str, str] = {}  # fingerprint -> PEM
        # Registrations may come from a worker thread (sync endpoints) while the loop serves.
        self._lock = threading.Lock()
        self.replace_all(pems)

    @property
    def accepts_unknown(self) -> bool:
        """True when any client certificate completes the handshake (the default mode)."""
        return self._accept_unknown and not self._hook_failed

    @property
    def fingerprints(self) -> frozenset[str]:
        """Hex SHA-256 fingerprints (of the DER) of the registered certificates."""
        with self._lock:
            return frozenset(self._pems)

    def add_pem(self, pem: str | bytes) -> None:
        """Register the certificate(s) in ``pem``; raises ``ValueError`` if there is none."""
        parsed = _parse_pems(pem)
        with self._lock:
            for fingerprint, text in parsed.items():
                if fingerprint not in self._pems:
                    self._pems[fingerprint] = text
                    for context in self._contexts:
                        context.load_verify_locations(cadata=text)

    def replace_all(self, pems: Iterable[str | bytes]) -> None:
        """Make ``pems`` the registered set (e.g. all certificates in the database)."""
        parsed: dict[str, str] = {}
        for pem in pems:
            parsed.update(_parse_pems(pem))
        with self._lock:
            new = {fp: text for fp, text in parsed.items() if fp not in self._pems}
            self._pems = parsed
            for context in self._contexts:
                for text in new.values():
                    context.load_verify_locations(cadata=text)

    def bind(self, context: ssl.SSLContext) -> None:
        """Make ``context`` request client certificates under this trust (done by the server)."""
        context.verify_mode = ssl.CERT_OPTIONAL
        context.verify_flags = ssl.VerifyFlags(
            int(context.verify_flags) | ssl.VERIFY_X509_PARTIAL_CHAIN | _X509_V_FLAG_NO_CHECK_TIME
        )
        with self._lock:
            for text in self._pems.values():
                context.load_verify_locations(cadata=text)
            self._contexts.append(context)
            if self._accept_unknown and not _accept_any_client_certificate(context):
                self._hook_failed = True
                logger.warning(
                    "cannot install the accept-any client-certificate hook: unregistered "
                    "client certificates will fail the TLS handshake"
                )


def _fingerprint(der: bytes) -> str:
    # Lower-case hex SHA-256 of the DER, the form keys pin (CONTRACT §4).
    digest = hashes.Hash(hashes.SHA256())
    digest.update(der)
    return digest.finalize().hex()


def _parse_pems(pem: str | bytes) -> dict[str, str]:
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    certs = x509.load_pem_x509_certificates(data)  # raises ValueError on garbage or none
    result: dict[str, str] = {}
    for cert in certs:
        der = cert.public_bytes(serialization.Encoding.DER)
        result[_fingerprint(der)] = cert.public_bytes(serialization.Encoding.PEM).decode()
    return result


def _first_pem(text: str) -> str | None:
    try:
        certs = x509.load_pem_x509_certificates(text.encode("ascii"))
    except ValueError:
        return None
    return certs[0].public_bytes(serialization.Encoding.PEM).decode() if certs else None


# ---- the accept-any hook --------------------------------------------------------------

_CertVerifyCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)


def _accept_chain(_store_ctx: int | None, _arg: int | None) -> int:
    # Replaces X509_verify_cert for client chains: 1 = "verified". Trust is decided later,
    # per key, by fingerprint; the handshake has already checked key possession.
    return 1


# ssl.CERT_* -> the SSL_VERIFY_* bits CPython hands to SSL_CTX_set_verify.
_OPENSSL_VERIFY_MODE = {ssl.CERT_NONE: 0x00, ssl.CERT_OPTIONAL: 0x01, ssl.CERT_REQUIRED: 0x03}

# Module-level so it is never garbage-collected while OpenSSL holds its address.
_ACCEPT_CHAIN = _CertVerifyCallback(_accept_chain)


def _accept_any_client_certificate(context: ssl.SSLContext) -> bool:
    """Install ``SSL_CTX_set_cert_verify_callback(ctx, accept, NULL)``; False if unsafe to."""
    if sys.implementation.name != "cpython":
        return False
    try:
        import _ssl

        # Symbols are looked up through _ssl's own handle so we call the very libssl that
        # Python linked (dlsym on a handle also searches that library's dependencies).
        lib = ctypes.CDLL(getattr(_ssl, "__file__", None))
        set_callback = lib.SSL_CTX_set_cert_verify_callback
        get_options = lib.SSL_CTX_get_options
        get_verify_mode = lib.SSL_CTX_get_verify_mode
        get_security_level = lib.SSL_CTX_get_security_level
    except (ImportError, OSError, AttributeError):
        return False
    options_type = ctypes.c_uint64 if ssl.OPENSSL_VERSION_INFO >= (3,) else ctypes.c_ulong
    get_options.argtypes = [ctypes.c_void_p]
    get_options.restype = options_type
    get_verify_mode.argtypes = [ctypes.c_void_p]
    get_verify_mode.restype = ctypes.c_int
    get_security_level.argtypes = [ctypes.c_void_p]
    get_security_level.restype = ctypes.c_int
    set_callback.argtypes = [ctypes.c_void_p, _CertVerifyCallback, ctypes.c_void_p]
    set_callback.restype = None

    # CPython's PySSLContext starts with PyObject_HEAD then `SSL_CTX *ctx` (stable since 3.x).
    # Three independent read-backs must agree before we call anything with the pointer.
    ssl_ctx = ctypes.c_void_p.from_address(id(context) + object.__basicsize__).value
    if not ssl_ctx:
        return False
    if (
        get_options(ssl_ctx) != int(context.options)
        or get_verify_mode(ssl_ctx) != _OPENSSL_VERIFY_MODE[context.verify_mode]
        or get_security_level(ssl_ctx) != context.security_level
    ):
        return False
    set_callback(ssl_ctx, _ACCEPT_CHAIN, None)
    return True
