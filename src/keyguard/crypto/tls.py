"""The development CA and server certificate that ``keyguard serve`` creates on first start.

Files live in ``DATA_DIR/tls/``: ``ca.pem`` (give it to clients: ``curl --cacert``),
``ca.key``, ``server.pem`` and ``server.key`` (private keys mode 0600, directory 0700).
Later starts reuse them; the server certificate is re-issued by the same CA when it is
missing, broken or within 30 days of expiry, so clients that trust ``ca.pem`` keep working.

Example::

    certs = ensure_dev_certificates(Path("keyguard-data"))
    context.load_cert_chain(certs.server_cert, certs.server_key)
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "CA_COMMON_NAME",
    "SERVER_DNS_NAMES",
    "SERVER_IPS",
    "DevCertificates",
    "ensure_dev_certificates",
]

CA_COMMON_NAME = "Keyguard Development CA"
SERVER_DNS_NAMES: tuple[str, ...] = ("localhost",)
SERVER_IPS: tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...] = (
    ipaddress.ip_address("127.0.0.1"),
    ipaddress.ip_address("::1"),
)

CA_VALIDITY = timedelta(days=3650)
SERVER_VALIDITY = timedelta(days=365)
RENEW_BEFORE = timedelta(days=30)
# Backdate notBefore a little so a client whose clock is slightly behind still accepts it.
CLOCK_SKEW = timedelta(minutes=5)

_CA_CERT = "ca.pem"
_CA_KEY = "ca.key"
_SERVER_CERT = "server.pem"
_SERVER_KEY = "server.key"


@dataclass(frozen=True, slots=True)
class DevCertificates:
    """Paths of the development CA certificate and of the server's certificate and key."""

    ca_cert: Path
    server_cert: Path
    server_key: Path


def ensure_dev_certificates(data_dir: Path, *, now: datetime | None = None) -> DevCertificates:
    """Create (first start) or reuse the development CA and server certificate.

    Idempotent and safe to call from several processes sharing ``data_dir`` (a lock file
    serialises generation). ``now`` is injectable for tests.
    """
    now = now or datetime.now(UTC)
    tls_dir = Path(data_dir) / "tls"
    tls_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    paths = DevCertificates(
        ca_cert=tls_dir / _CA_CERT,
        server_cert=tls_dir / _SERVER_CERT,
        server_key=tls_dir / _SERVER_KEY,
    )
    ca_key_path = tls_dir / _CA_KEY
    with _exclusive_lock(tls_dir / ".lock"):
        ca = _load_pair(paths.ca_cert, ca_key_path)
        if ca is None or not _ca_is_usable(ca[0], now=now):
            ca = _new_ca(now)
            # A new CA invalidates every server certificate signed by the old one.
            _write_key(ca_key_path, ca[1])
            _write_cert(paths.ca_cert, ca[0])
        server = _load_pair(paths.server_cert, paths.server_key)
        if server is None or not _server_is_usable(server[0], ca[0], now=now):
            server_cert, server_key = _new_server_cert(ca[0], ca[1], now)
            _write_key(paths.server_key, server_key)
            _write_cert(paths.server_cert, server_cert)
        for key_path in (ca_key_path, paths.server_key):
            # Tighten keys a user (or an old version) left readable by others.
            os.chmod(key_path, 0o600)
    return paths


# ---- checks ---------------------------------------------------------------------------

_Pair = tuple[x509.Certificate, ec.EllipticCurvePrivateKey]


def _load_pair(cert_path: Path, key_path: Path) -> _Pair | None:
    """The certificate and its key, or None when either is missing, broken or mismatched."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        return None
    if cert.public_key() != key.public_key():
        return None
    return cert, key


def _ca_is_usable(cert: x509.Certificate, *, now: datetime) -> bool:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    return constraints.ca and cert.not_valid_after_utc - RENEW_BEFORE > now


def _server_is_usable(cert: x509.Certificate, ca: x509.Certificate, *, now: datetime) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    names_ok = set(SERVER_DNS_NAMES) <= set(san.get_values_for_type(x509.DNSName)) and set(
        SERVER_IPS
    ) <= set(san.get_values_for_type(x509.IPAddress))
    return names_ok and cert.not_valid_after_utc - RENEW_BEFORE > now


# ---- generation -----------------------------------------------------------------------


def _new_ca(now: datetime) -> _Pair:
    key = ec.generate_private_key(ec.SECP256R1())
    # A random OU tells two installations' CAs apart in a trust store.
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Keyguard"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"dev {secrets.token_hex(4)}"),
            x509.NameAttribute(NameOID.COMMON_NAME, CA_COMMON_NAME),
        ]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    # Name constraints limit the damage if ca.key leaks after a user trusted ca.pem: the CA
    # can only vouch for the loopback names, never for a real domain (RFC 5280 §4.2.1.10).
    constraints = x509.NameConstraints(
        permitted_subtrees=[
            *(x509.DNSName(n) for n in SERVER_DNS_NAMES),
            x509.IPAddress(ipaddress.ip_network("127.0.0.0/8")),
            x509.IPAddress(ipaddress.ip_network("::1/128")),
        ],
        excluded_subtrees=None,
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(constraints, critical=True)
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _new_server_cert(
    ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, now: datetime
) -> _Pair:
    key = ec.generate_private_key(ec.SECP256R1())
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    san = x509.SubjectAlternativeName(
        [*(x509.DNSName(n) for n in SERVER_DNS_NAMES), *(x509.IPAddress(ip) for ip in SERVER_IPS)]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(min(now + SERVER_VALIDITY, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(san, critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


# ---- files ----------------------------------------------------------------------------


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _atomic_write(path, data, mode=0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    _atomic_write(path, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)


def _atomic_write(path: Path, data: bytes, *, mode: int) -> None:
    # mkstemp creates the file 0600, so a key is never readable by others, not even briefly;
    # the rename means a crash leaves the old file or the new one, never half of one.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    """Serialise generation between processes started at once on one data dir."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory locks, best effort
        yield
        return
    with open(path, "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
