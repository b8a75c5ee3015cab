from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from keyguard.crypto.certificates import (
    CertificateInfo,
    InvalidCertificate,
    certificate_from_proxy_headers,
    info_from_der,
    is_valid_at,
    parse_pem_certificate,
)

NOW = datetime(2030, 6, 1, tzinfo=UTC)


def _make_cert(
    cn: str = "client-1",
    not_before: datetime = NOW - timedelta(days=1),
    not_after: datetime = NOW + timedelta(days=365),
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme, Inc."),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture(scope="module")
def cert_and_key() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    return _make_cert()


@pytest.fixture(scope="module")
def cert(cert_and_key: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]) -> x509.Certificate:
    return cert_and_key[0]


@pytest.fixture(scope="module")
def openssl_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The self-signed certificate the seed tells users to make, made the same way."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    tmp = tmp_path_factory.mktemp("openssl")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-nodes",
            "-days",
            "365",
            "-newkey",
            "rsa:2048",
            "-keyout",
            "private.key",
            "-out",
            "certificate.crt",
            "-subj",
            "/CN=test",
        ],
        cwd=tmp,
        check=True,
        capture_output=True,
    )
    return tmp / "certificate.crt", tmp / "private.key"


# ---- parsing uploads -------------------------------------------------------------------


def test_pem_certificate_is_parsed_and_pinned_by_sha256_of_der(cert: x509.Certificate) -> None:
    info = parse_pem_certificate(_pem(cert))
    assert info.fingerprint_sha256 == hashlib.sha256(_der(cert)).hexdigest()
    assert info.fingerprint_sha256 == cert.fingerprint(hashes.SHA256()).hex()
    assert info.subject == "O=Acme\\, Inc.,CN=client-1"  # RFC 4514, most specific first
    assert info.not_before == cert.not_valid_before_utc
    assert info.not_after == cert.not_valid_after_utc
    assert info.not_after.tzinfo is not None


def test_info_from_der_matches_pem(cert: x509.Certificate) -> None:
    assert info_from_der(_der(cert)) == parse_pem_certificate(_pem(cert))


def test_openssl_self_signed_certificate_from_the_seed_is_accepted(
    openssl_files: tuple[Path, Path],
) -> None:
    crt, _ = openssl_files
    info = parse_pem_certificate(crt.read_text())
    out = subprocess.run(
        ["openssl", "x509", "-in", str(crt), "-noout", "-fingerprint", "-sha256"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    openssl_fp = out.strip().split("=", 1)[1].replace(":", "").lower()
    assert info.fingerprint_sha256 == openssl_fp
    assert info.subject == "CN=test"
    assert info.not_after - info.not_before == timedelta(days=365)
    assert is_valid_at(info, datetime.now(UTC))


def test_openssl_private_key_is_refused_with_a_warning(openssl_files: tuple[Path, Path]) -> None:
    _, key = openssl_files
    with pytest.raises(ValueError, match="private key"):
        parse_pem_certificate(key.read_text())


def test_certificate_pasted_with_its_key_is_refused(
    cert_and_key: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
) -> None:
    cert, key = cert_and_key
    with pytest.raises(ValueError, match="private key"):
        parse_pem_certificate(_pem(cert) + _key_pem(key))


def test_bundle_of_several_certificates_is_refused(cert: x509.Certificate) -> None:
    other, _ = _make_cert("client-2")
    with pytest.raises(ValueError, match="2 certificates"):
        parse_pem_certificate(_pem(cert) + _pem(other))


def test_public_key_is_not_a_certificate(
    cert_and_key: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
) -> None:
    public = (
        cert_and_key[1]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    with pytest.raises(ValueError, match="found PUBLIC KEY"):
        parse_pem_certificate(public)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n",  # not DER
        "-----BEGIN CERTIFICATE-----\nMIIB\n",  # truncated
        "x" * 70_000,
        "-----BEGIN CERTIFICATE-----\nMIIB\u00e9AAA\n-----END CERTIFICATE-----\n",  # non-ASCII
    ],
)
def test_garbage_is_refused(text: str) -> None:
    with pytest.raises(InvalidCertificate):
        parse_pem_certificate(text)


def test_garbage_der_is_refused() -> None:
    with pytest.raises(InvalidCertificate, match="DER"):
        info_from_der(b"\x30\x03\x02\x01\x00")


def test_crlf_and_surrounding_text_are_tolerated(cert: x509.Certificate) -> None:
    pem = "Bag Attributes: friendly\r\n" + _pem(cert).replace("\n", "\r\n") + "\r\n"
    assert parse_pem_certificate(pem).fingerprint_sha256 == hashlib.sha256(_der(cert)).hexdigest()


# ---- validity --------------------------------------------------------------------------


def test_expired_certificate_is_not_valid() -> None:
    expired, _ = _make_cert(not_before=NOW - timedelta(days=30), not_after=NOW - timedelta(days=1))
    info = parse_pem_certificate(_pem(expired))
    assert not is_valid_at(info, NOW)


def test_not_yet_valid_certificate_is_not_valid() -> None:
    future, _ = _make_cert(not_before=NOW + timedelta(days=1), not_after=NOW + timedelta(days=2))
    assert not is_valid_at(parse_pem_certificate(_pem(future)), NOW)


def test_validity_bounds_are_inclusive_and_naive_datetimes_are_utc() -> None:
    start = datetime(2030, 1, 1, tzinfo=UTC)
    end = datetime(2031, 1, 1, tzinfo=UTC)
    info = CertificateInfo("00" * 32, "CN=x", start, end)
    assert is_valid_at(info, start)
    assert is_valid_at(info, end)
    assert not is_valid_at(info, end + timedelta(seconds=1))
    assert not is_valid_at(info, start - timedelta(seconds=1))
    assert is_valid_at(info, datetime(2030, 6, 1))


def test_certificate_info_is_frozen(cert: x509.Certificate) -> None:
    info = parse_pem_certificate(_pem(cert))
    with pytest.raises(AttributeError):
        info.subject = "CN=evil"  # type: ignore[misc]


# ---- forwarded by a proxy --------------------------------------------------------------


def test_no_certificate_headers_means_none() -> None:
    assert certificate_from_proxy_headers({}) is None
    assert certificate_from_proxy_headers({"client-cert": ""}) is None
    assert certificate_from_proxy_headers({"x-ssl-client-cert": " "}) is None
    assert (
        certificate_from_proxy_headers({"x-ssl-client-cert": ""}, header="x-ssl-client-cert")
        is None
    )


def test_rfc9440_client_cert_byte_sequence(cert: x509.Certificate) -> None:
    value = ":" + base64.b64encode(_der(cert)).decode() + ":"
    assert certificate_from_proxy_headers({"client-cert": value}) == _der(cert)


def test_rfc9440_tolerates_missing_padding_and_parameters() -> None:
    # Only a DER length that is not a multiple of 3 has padding to leave out.
    padded = next(c for c in (_make_cert()[0] for _ in range(50)) if len(_der(c)) % 3)
    b64 = base64.b64encode(_der(padded)).decode()
    assert b64.endswith("=")
    unpadded = b64.rstrip("=")
    assert certificate_from_proxy_headers({"client-cert": f":{unpadded}:;x=1"}) == _der(padded)


@pytest.mark.parametrize(
    "value",
    [
        "MIIB",  # no colons
        ":not base64!:",
        ":" + base64.b64encode(b"not a certificate").decode() + ":",
        '"MIIB"',
    ],
)
def test_malformed_client_cert_raises(value: str) -> None:
    with pytest.raises(InvalidCertificate):
        certificate_from_proxy_headers({"client-cert": value})


def _smuggled(victim: x509.Certificate, own: x509.Certificate) -> dict[str, str]:
    """nginx set X-SSL-Client-Cert (the client's own certificate) but passed through the
    Client-Cert the client wrote itself, holding another client's public certificate."""
    return {
        "client-cert": ":" + base64.b64encode(_der(victim)).decode() + ":",
        "x-ssl-client-cert": quote(_pem(own), safe=""),
        "x-ssl-client-verify": "SUCCESS",
    }


def test_a_smuggled_second_certificate_header_is_refused_as_ambiguous(
    cert: x509.Certificate,
) -> None:
    own, _ = _make_cert("attacker")
    with pytest.raises(InvalidCertificate, match="ambiguous"):
        certificate_from_proxy_headers(_smuggled(cert, own))
    # Present by name is enough: an empty copy is ambiguous too.
    with pytest.raises(InvalidCertificate):
        certificate_from_proxy_headers({**_smuggled(cert, own), "x-ssl-client-cert": ""})
    three = {**_smuggled(cert, own), "x-forwarded-client-cert": f"Cert={quote(_pem(own))}"}
    with pytest.raises(InvalidCertificate):
        certificate_from_proxy_headers(three)


def test_the_configured_header_is_the_only_one_read(cert: x509.Certificate) -> None:
    own, _ = _make_cert("attacker")
    headers = _smuggled(cert, own)
    assert certificate_from_proxy_headers(headers, header="x-ssl-client-cert") == _der(own)
    assert certificate_from_proxy_headers(headers, header="client-cert") == _der(cert)
    # The configured header absent: no forwarded certificate, whatever else was sent.
    assert certificate_from_proxy_headers(headers, header="x-forwarded-client-cert") is None


def test_an_unknown_configured_header_is_an_error(cert: x509.Certificate) -> None:
    with pytest.raises(ValueError, match="not a client certificate header"):
        certificate_from_proxy_headers({}, header="x-client-cert")


def test_envoy_xfcc_cert_is_read(cert: x509.Certificate) -> None:
    value = (
        "By=spiffe://cluster.local/ns/default/sa/gw;"
        f"Hash={hashlib.sha256(_der(cert)).hexdigest()};"
        f'Cert="{quote(_pem(cert), safe="")}";'
        'Subject="CN=client-1,O=Acme\\, Inc.";URI=;DNS=a.example.com'
    )
    assert certificate_from_proxy_headers({"x-forwarded-client-cert": value}) == _der(cert)


def test_envoy_xfcc_uses_the_element_the_nearest_proxy_appended(cert: x509.Certificate) -> None:
    far, _ = _make_cert("far-away")
    value = (
        f'By=spiffe://a;Cert="{quote(_pem(far), safe="")}";Subject="CN=a,O=b"'
        f",By=spiffe://b;cert={quote(_pem(cert), safe='')}"
    )
    assert certificate_from_proxy_headers({"x-forwarded-client-cert": value}) == _der(cert)


def test_envoy_xfcc_without_cert_in_nearest_element_gives_none(cert: x509.Certificate) -> None:
    value = f"Cert={quote(_pem(cert), safe='')},By=spiffe://b;Hash=abc"
    assert certificate_from_proxy_headers({"x-forwarded-client-cert": value}) is None


@pytest.mark.parametrize(
    "value",
    [
        'Cert="unterminated',
        "Cert",
        "By=x,",
        "Cert=not-a-pem",
        "Cert=" + quote("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
    ],
)
def test_malformed_xfcc_raises(value: str) -> None:
    with pytest.raises(InvalidCertificate):
        certificate_from_proxy_headers({"x-forwarded-client-cert": value})


def _nginx_escaped(cert: x509.Certificate) -> str:
    # $ssl_client_escaped_cert: URL-encoded PEM.
    return quote(_pem(cert), safe="")


@pytest.mark.parametrize(
    "verify",
    [
        None,
        "SUCCESS",
        "FAILED:self-signed certificate",  # OpenSSL 3 + ssl_verify_client optional_no_ca
        "FAILED:self signed certificate",  # OpenSSL 1.1 spelling
        "FAILED:unable to get local issuer certificate",
    ],
)
def test_nginx_escaped_certificate_is_read(cert: x509.Certificate, verify: str | None) -> None:
    headers = {"x-ssl-client-cert": _nginx_escaped(cert)}
    if verify is not None:
        headers["x-ssl-client-verify"] = verify
    assert certificate_from_proxy_headers(headers) == _der(cert)


def test_nginx_plus_signs_are_not_turned_into_spaces(cert: x509.Certificate) -> None:
    # nginx leaves '+' unescaped; unquote_plus would corrupt the base64.
    value = quote(_pem(cert), safe="+/=")
    assert certificate_from_proxy_headers({"x-ssl-client-cert": value}) == _der(cert)


@pytest.mark.parametrize(
    "verify",
    [
        "NONE",
        "FAILED:certificate has expired",
        "FAILED:certificate signature failure",
        "FAILED:certificate revoked",
        "FAILED",
        "maybe",
    ],
)
def test_nginx_verification_failures_are_refused(cert: x509.Certificate, verify: str) -> None:
    headers = {"x-ssl-client-cert": _nginx_escaped(cert), "x-ssl-client-verify": verify}
    with pytest.raises(InvalidCertificate):
        certificate_from_proxy_headers(headers)


def test_nginx_garbage_certificate_raises() -> None:
    with pytest.raises(InvalidCertificate):
        certificate_from_proxy_headers({"x-ssl-client-cert": "%2D%2D%2D%2Dgarbage"})


def test_openssl_certificate_through_every_proxy_format(
    openssl_files: tuple[Path, Path],
) -> None:
    crt, _ = openssl_files
    pem = crt.read_text()
    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
    escaped = quote(pem, safe="")
    for headers in (
        {"client-cert": ":" + base64.b64encode(der).decode() + ":"},
        {"x-forwarded-client-cert": f'By=spiffe://gw;Cert="{escaped}"'},
        {"x-ssl-client-cert": escaped, "x-ssl-client-verify": "FAILED:self-signed certificate"},
    ):
        assert certificate_from_proxy_headers(headers) == der
