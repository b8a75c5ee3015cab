"""The development CA and server certificate: properties, file modes, reuse and renewal."""

from __future__ import annotations

import ipaddress
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from keyguard.crypto.tls import CA_COMMON_NAME, DevCertificates, ensure_dev_certificates

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def certs(tmp_path: Path) -> DevCertificates:
    return ensure_dev_certificates(tmp_path / "data", now=NOW)


def test_files_are_created_under_data_dir_tls(tmp_path: Path, certs: DevCertificates) -> None:
    tls_dir = tmp_path / "data" / "tls"
    assert certs == DevCertificates(
        ca_cert=tls_dir / "ca.pem",
        server_cert=tls_dir / "server.pem",
        server_key=tls_dir / "server.key",
    )
    assert (tls_dir / "ca.key").is_file()


def test_private_keys_are_readable_by_owner_only(certs: DevCertificates) -> None:
    assert _mode(certs.server_key) == 0o600
    assert _mode(certs.ca_cert.parent / "ca.key") == 0o600
    assert _mode(certs.ca_cert.parent) == 0o700


def test_ca_is_a_ten_year_constrained_ca(certs: DevCertificates) -> None:
    ca = _cert(certs.ca_cert)
    assert ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == CA_COMMON_NAME
    assert ca.subject == ca.issuer
    basic = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical
    assert basic.value.ca
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign
    assert usage.crl_sign
    assert ca.not_valid_after_utc - ca.not_valid_before_utc >= timedelta(days=3650)
    permitted = ca.extensions.get_extension_for_class(x509.NameConstraints).value
    assert x509.DNSName("localhost") in (permitted.permitted_subtrees or [])


def test_server_certificate_covers_localhost_and_loopback_ips(certs: DevCertificates) -> None:
    server = _cert(certs.server_cert)
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    }
    eku = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert not server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert timedelta(days=360) <= server.not_valid_after_utc - NOW <= timedelta(days=366)


def test_server_certificate_is_signed_by_the_ca_and_matches_its_key(
    certs: DevCertificates,
) -> None:
    server = _cert(certs.server_cert)
    server.verify_directly_issued_by(_cert(certs.ca_cert))
    key = serialization.load_pem_private_key(certs.server_key.read_bytes(), password=None)
    assert key.public_key() == server.public_key()


def test_second_start_reuses_every_file(tmp_path: Path, certs: DevCertificates) -> None:
    before = {p: p.read_bytes() for p in certs.ca_cert.parent.iterdir()}
    again = ensure_dev_certificates(tmp_path / "data", now=NOW + timedelta(days=100))
    assert again == certs
    assert {p: p.read_bytes() for p in certs.ca_cert.parent.iterdir()} == before


def test_server_certificate_near_expiry_is_reissued_by_the_same_ca(
    tmp_path: Path, certs: DevCertificates
) -> None:
    ca_before = certs.ca_cert.read_bytes()
    old_serial = _cert(certs.server_cert).serial_number
    later = NOW + timedelta(days=340)  # within 30 days of the one-year expiry
    ensure_dev_certificates(tmp_path / "data", now=later)
    assert certs.ca_cert.read_bytes() == ca_before
    renewed = _cert(certs.server_cert)
    assert renewed.serial_number != old_serial
    assert renewed.not_valid_after_utc > later + timedelta(days=300)
    renewed.verify_directly_issued_by(_cert(certs.ca_cert))


def test_broken_or_mismatched_server_files_are_replaced(
    tmp_path: Path, certs: DevCertificates
) -> None:
    certs.server_key.write_bytes(b"not a key")
    ensure_dev_certificates(tmp_path / "data", now=NOW)
    key = serialization.load_pem_private_key(certs.server_key.read_bytes(), password=None)
    assert key.public_key() == _cert(certs.server_cert).public_key()


def test_loosened_key_permissions_are_tightened_again(
    tmp_path: Path, certs: DevCertificates
) -> None:
    certs.server_key.chmod(0o644)
    ensure_dev_certificates(tmp_path / "data", now=NOW)
    assert _mode(certs.server_key) == 0o600


def test_a_new_ca_forces_a_new_server_certificate(tmp_path: Path, certs: DevCertificates) -> None:
    (certs.ca_cert.parent / "ca.key").unlink()
    ensure_dev_certificates(tmp_path / "data", now=NOW)
    _cert(certs.server_cert).verify_directly_issued_by(_cert(certs.ca_cert))


def test_existing_empty_data_dir_is_fine(tmp_path: Path) -> None:
    (tmp_path / "tls").mkdir()
    certs = ensure_dev_certificates(tmp_path, now=NOW)
    assert certs.server_cert.is_file()
