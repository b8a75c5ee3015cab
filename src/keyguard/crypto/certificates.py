"""Client certificates: parse what users upload, and what a trusted TLS proxy forwards.

Keyguard pins certificates by the lower-case hex SHA-256 of their DER (CONTRACT §4), so
self-signed certificates are fine and no CA chain is built here. What matters is that
the TLS terminator checked possession of the private key (every TLS handshake does) and
that the certificate is inside its validity period (:func:`is_valid_at`).

Uploads (:func:`parse_pem_certificate`) must hold exactly one ``CERTIFICATE`` block: a
bundle is refused rather than silently pinning one of several, and a private key in the
text is refused so that users notice they pasted something secret.

Forwarded certificates (:func:`certificate_from_proxy_headers`) come in one of three
headers. With ``header`` (``KEYGUARD_CLIENT_CERT_HEADER``), only that one is read and the
others are ignored. Without it, a certificate is read only when exactly one of the three
is present (by name, empty or not); two or more are refused as ambiguous, because a proxy
that sets one of them but passes the others through would otherwise let a client smuggle
another's certificate in a header read first. The formats:

1. ``client-cert`` (RFC 9440): a structured-field Byte Sequence ``:BASE64(DER):``.
2. ``x-forwarded-client-cert`` (Envoy): the *last* comma-separated element, because
   each proxy appends the element describing its own downstream peer; its ``Cert`` key
   carries the URL-encoded PEM. An element without ``Cert`` yields ``None``.
3. ``x-ssl-client-cert`` (nginx ``$ssl_client_escaped_cert``: URL-encoded PEM), checked
   against ``x-ssl-client-verify`` (``$ssl_client_verify``) when that header is sent:
   ``SUCCESS`` is honoured; so is ``FAILED:<reason>`` when the reason only says the
   issuer is not a CA nginx trusts (``self-signed certificate``, ``unable to get local
   issuer certificate``, …), which is what ``ssl_verify_client optional_no_ca`` reports
   for the self-signed certificates Keyguard pins; ``NONE`` means no certificate; any
   other failure (expired, bad signature, revoked) is refused.

A header that is present but malformed raises :class:`InvalidCertificate`, a
``ValueError`` (the caller answers
``client_certificate_invalid``); an empty header counts as absent. Whether the peer is
a trusted proxy is the caller's decision: only ever call this for one.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from keyguard.wire import PROXY_CERT_HEADERS

__all__ = [
    "PROXY_CERT_HEADERS",
    "CertificateInfo",
    "InvalidCertificate",
    "certificate_from_proxy_headers",
    "info_from_der",
    "is_valid_at",
    "parse_pem_certificate",
]

MAX_PEM_CHARS = 64 * 1024  # a client certificate is a few KiB; refuse before parsing

_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL | re.ASCII)
_SF_BINARY = re.compile(r":([A-Za-z0-9+/=]*):(?:;.*)?", re.DOTALL)  # RFC 8941 §3.3.5
# OpenSSL's X509_verify_cert_error_string() for "issuer not trusted", in 1.1 and 3.x
# spellings ("self signed" / "self-signed"), normalised to lower case without hyphens.
_NGINX_UNTRUSTED_ISSUER = frozenset(
    {
        "self signed certificate",
        "self signed certificate in certificate chain",
        "unable to get local issuer certificate",
        "unable to get issuer certificate",
        "unable to verify the first certificate",
    }
)


class InvalidCertificate(ValueError):
    """Not one usable certificate; the message says why and never holds key material."""


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    fingerprint_sha256: str  # lower-case hex of SHA-256(DER): what a key pins
    subject: str  # RFC 4514 string, for display only
    not_before: datetime  # aware, UTC
    not_after: datetime  # aware, UTC


def info_from_der(der: bytes) -> CertificateInfo:
    """Parse one DER certificate (``ValueError`` if it is not one)."""
    try:
        cert = x509.load_der_x509_certificate(bytes(der))
    except ValueError:
        raise InvalidCertificate("not a DER-encoded X.509 certificate") from None
    canonical = cert.public_bytes(Encoding.DER)
    try:
        subject = cert.subject.rfc4514_string()
    except ValueError:  # undecodable attribute values
        subject = ""
    return CertificateInfo(
        fingerprint_sha256=hashlib.sha256(canonical).hexdigest(),
        subject=subject,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
    )


def _der_from_pem(pem: str) -> bytes:
    if not isinstance(pem, str) or len(pem) > MAX_PEM_CHARS:
        raise InvalidCertificate("certificate PEM is missing or too large")
    labels: list[str] = []
    bodies: list[str] = []
    for match in _PEM_BLOCK.finditer(pem):
        labels.append(match.group(1))
        if match.group(1) == "CERTIFICATE":
            bodies.append(match.group(2))
    if any("PRIVATE KEY" in label for label in labels):
        raise InvalidCertificate("this PEM contains a private key: upload only the certificate")
    if not bodies:
        found = f" (found {', '.join(labels)})" if labels else ""
        raise InvalidCertificate(f"no PEM 'CERTIFICATE' block found{found}")
    if len(bodies) > 1:
        raise InvalidCertificate(
            f"this PEM contains {len(bodies)} certificates: upload only the client certificate"
        )
    # Proxies mangle line breaks (spaces, tabs, CRLF); base64 itself has no whitespace.
    compact = "".join(bodies[0].split())
    try:
        return base64.b64decode(compact, validate=True)
    except ValueError:  # binascii.Error, or non-ASCII characters
        raise InvalidCertificate("the certificate's base64 is invalid") from None


def parse_pem_certificate(pem: str) -> CertificateInfo:
    """Parse an uploaded PEM holding exactly one certificate (``ValueError`` otherwise)."""
    return info_from_der(_der_from_pem(pem))


def is_valid_at(info: CertificateInfo, now: datetime) -> bool:
    """Whether ``now`` is within the validity period, bounds included (RFC 5280 §4.1.2.5)."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return info.not_before <= now <= info.not_after


def _checked_der(der: bytes) -> bytes:
    info_from_der(der)  # raises ValueError for anything that is not a certificate
    return der


def _from_client_cert(value: str) -> bytes:
    match = _SF_BINARY.fullmatch(value)
    if match is None:
        raise InvalidCertificate("Client-Cert is not a structured-field byte sequence")
    data = match.group(1)
    # RFC 8941 §3.3.5: parsers SHOULD NOT fail when '=' padding is missing.
    data += "=" * (-len(data) % 4)
    try:
        return _checked_der(base64.b64decode(data, validate=True))
    except ValueError:
        raise InvalidCertificate("Client-Cert base64 is invalid") from None


def _split_quoted(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside double quotes (``\\"`` escapes a quote inside)."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == sep and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    if quoted:
        raise InvalidCertificate("unterminated quoted value")
    parts.append("".join(current))
    return parts


def _unquote_xfcc(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return value


def _from_xfcc(value: str) -> bytes | None:
    elements = _split_quoted(value, ",")
    # Each proxy appends its own element: the nearest proxy's is the last one.
    nearest = elements[-1].strip()
    if not nearest:
        raise InvalidCertificate("empty X-Forwarded-Client-Cert element")
    for pair in _split_quoted(nearest, ";"):
        key, eq, raw = pair.partition("=")
        if not eq:
            raise InvalidCertificate("X-Forwarded-Client-Cert pair without '='")
        if key.strip().lower() == "cert":  # keys are case-insensitive (Envoy docs)
            return _checked_der(_der_from_pem(unquote(_unquote_xfcc(raw))))
    return None


def _from_nginx(value: str, verify: str | None) -> bytes | None:
    if verify is not None:
        verdict = verify.strip()
        if verdict == "NONE":
            raise InvalidCertificate("X-SSL-Client-Verify says no certificate, yet one was sent")
        if verdict != "SUCCESS":
            status, _, reason = verdict.partition(":")
            reason = " ".join(reason.replace("-", " ").lower().split())
            if status != "FAILED" or reason not in _NGINX_UNTRUSTED_ISSUER:
                raise InvalidCertificate("the proxy did not accept the client certificate")
    # unquote, not unquote_plus: '+' is a base64 character that nginx may leave as is.
    return _checked_der(_der_from_pem(unquote(value)))


def certificate_from_proxy_headers(
    headers: Mapping[str, str], *, header: str | None = None
) -> bytes | None:
    """The client certificate's DER forwarded by a trusted proxy, or ``None`` if none.

    ``headers`` has lower-case names; ``header`` is the only one to read (one of
    :data:`PROXY_CERT_HEADERS`), or ``None`` to accept whichever one is present alone.
    See the module docstring for the formats and the ``X-SSL-Client-Verify`` values
    honoured.
    """
    if header is None:
        present = [name for name in PROXY_CERT_HEADERS if name in headers]
        if len(present) > 1:
            raise InvalidCertificate(
                f"ambiguous client certificate: {', '.join(present)} are all present"
            )
        if not present:
            return None
        header = present[0]
    elif header not in PROXY_CERT_HEADERS:
        raise ValueError(f"not a client certificate header: {header!r}")
    value = headers.get(header, "").strip()
    if not value:
        return None
    if header == "client-cert":
        return _from_client_cert(value)
    if header == "x-forwarded-client-cert":
        return _from_xfcc(value)
    return _from_nginx(value, headers.get("x-ssl-client-verify"))
