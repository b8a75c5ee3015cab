"""The request as the engine sees it: credentials plus facts, gathered by a door."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from ipaddress import IPv4Address, IPv6Address

from keyguard.crypto.certificates import certificate_from_proxy_headers
from keyguard.errors import ClientCertificateInvalid


# Every request on a TLS connection carries the same client certificate PEM (and the
# same str object, whose hash is cached): decode it once.
@lru_cache(maxsize=1024)
def _pem_to_der(pem: str) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem)


@dataclass(frozen=True, slots=True, repr=False)
class Credentials:
    """A presented key. ``secret`` is None for a signed request (the id alone travels)."""

    key_id: str
    secret: str | None

    def __repr__(self) -> str:
        return f"Credentials(key_id={self.key_id!r}, secret=<redacted>)"


@dataclass(frozen=True, slots=True, repr=False)
class AccessToken:
    """A JWT presented as ``Authorization: Bearer`` (verified by a :class:`TokenVerifier`)."""

    token: str

    def __repr__(self) -> str:
        return "AccessToken(<redacted>)"


@dataclass(slots=True, repr=False)
class RequestFacts:
    """Everything a check may look at. Doors fill in what they know; the rest stays None.

    Transport facts arrive already resolved (``doors.scope.facts_from_scope`` does it for
    every ASGI door, trusted proxies included): ``client_ip`` is the real client,
    ``https`` says whether the client reached us over TLS, and ``forwarded_cert_headers``
    is set only when the socket peer is a trusted proxy. The client certificate itself is
    decoded lazily (:meth:`certificate_der`), only for keys that pin certificates.
    """

    client_ip: str | IPv4Address | IPv6Address | None = None
    origin: str | None = None
    referer: str | None = None
    totp: str | None = None
    method: str = "GET"
    path_with_query: str = "/"
    body: bytes | None = None
    timestamp: str | None = None
    signature: str | None = None
    client_cert_der: bytes | None = None
    client_cert_pem: str | None = None  # from the TLS handshake (ASGI TLS extension)
    forwarded_cert_headers: Mapping[str, str] | None = None  # trusted proxies only
    # KEYGUARD_CLIENT_CERT_HEADER: the only forwarded certificate header to read.
    forwarded_cert_header: str | None = None
    https: bool = True

    def __repr__(self) -> str:
        return f"RequestFacts(method={self.method!r}, path={self.path_with_query!r})"

    def certificate_der(self) -> bytes | None:
        """The client certificate's DER, or None when none was presented.

        A certificate forwarded by a trusted proxy (RFC 9440 ``Client-Cert``, Envoy
        ``X-Forwarded-Client-Cert``, nginx ``X-SSL-Client-Cert``) wins over the one of
        our own TLS handshake, which is then the proxy's, but only from the one header
        ``forwarded_cert_header`` (``KEYGUARD_CLIENT_CERT_HEADER``) names (CONTRACT §4):
        a proxy sets one header and may pass the others through as the client wrote
        them, and a certificate is public, so any other would let a client holding a
        stolen key present the owner's certificate. Unset, no forwarded certificate is
        believed. A malformed one raises ``ClientCertificateInvalid``.
        """
        if self.client_cert_der is not None:
            return self.client_cert_der
        try:
            if self.forwarded_cert_headers and self.forwarded_cert_header:
                der = certificate_from_proxy_headers(
                    self.forwarded_cert_headers, header=self.forwarded_cert_header
                )
                if der is not None:
                    return der
            if self.client_cert_pem:
                return _pem_to_der(self.client_cert_pem)
        except ValueError:
            raise ClientCertificateInvalid() from None
        return None
