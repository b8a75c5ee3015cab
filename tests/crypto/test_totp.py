from __future__ import annotations

import base64
import binascii
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest

from keyguard.crypto.totp import (
    match_totp,
    new_totp_secret,
    provisioning_uri,
    qr_svg,
    totp_code,
)
from keyguard.errors import TotpInvalid

# RFC 6238 Appendix B: SHA-1 seed "12345678901234567890", 8 digits, 30 s step.
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()
RFC_VECTORS = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]
NOW = 1_700_000_015.0  # 15 s into its step
# "123456" -> U+FF11 U+FF12 ... : str.isdigit() is True for these, int() parses them.
FULL_WIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + i) for i in range(10)))
ARABIC_INDIC = str.maketrans("0123456789", "".join(chr(0x0660 + i) for i in range(10)))


@pytest.mark.parametrize(("now", "code"), RFC_VECTORS)
def test_rfc6238_appendix_b_vectors(now: int, code: str) -> None:
    assert totp_code(RFC_SECRET, now, digits=8) == code
    assert match_totp(RFC_SECRET, code, now, digits=8) == now // 30


def test_new_secret_is_160_bits_of_base32_and_unique() -> None:
    secret = new_totp_secret()
    assert len(secret) == 32
    assert len(base64.b32decode(secret)) == 20
    assert new_totp_secret() != secret


def test_code_from_an_independent_client_is_accepted() -> None:
    secret = new_totp_secret()
    code = pyotp.TOTP(secret).at(NOW)
    assert match_totp(secret, code, NOW) == int(NOW // 30)


@pytest.mark.parametrize("offset", [-1, 1])
def test_one_step_of_drift_is_accepted_and_reports_that_step(offset: int) -> None:
    secret = new_totp_secret()
    code = pyotp.TOTP(secret).at(NOW + 30 * offset)
    assert match_totp(secret, code, NOW) == int(NOW // 30) + offset


@pytest.mark.parametrize("offset", [-2, 2])
def test_two_steps_of_drift_are_refused(offset: int) -> None:
    secret = new_totp_secret()
    code = pyotp.TOTP(secret).at(NOW + 30 * offset)
    # Skip the 1-in-a-million case where the far code equals a near one.
    near = {pyotp.TOTP(secret).at(NOW + 30 * o) for o in (-1, 0, 1)}
    if code in near:
        pytest.skip("code collision")
    with pytest.raises(TotpInvalid):
        match_totp(secret, code, NOW)


def test_wider_window_accepts_more_drift() -> None:
    secret = new_totp_secret()
    code = pyotp.TOTP(secret).at(NOW - 60)
    assert match_totp(secret, code, NOW, window=2) == int(NOW // 30) - 2


def test_zero_window_accepts_only_the_current_step() -> None:
    secret = new_totp_secret()
    assert match_totp(secret, totp_code(secret, NOW), NOW, window=0) == int(NOW // 30)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda c: c.translate(FULL_WIDTH),
        lambda c: c.translate(ARABIC_INDIC),
        lambda c: f" {c}",
        lambda c: f"{c} ",
        lambda c: f"{c[:3]} {c[3:]}",
        lambda c: f"+{c[1:]}",
        lambda c: f"-{c[1:]}",
        lambda c: c[:5],
        lambda c: c + "0",
        lambda c: "",
    ],
)
def test_codes_that_are_not_exactly_six_ascii_digits_are_refused(mangle: object) -> None:
    secret = new_totp_secret()
    code = totp_code(secret, NOW)
    assert callable(mangle)
    with pytest.raises(TotpInvalid):
        match_totp(secret, mangle(code), NOW)


def test_wrong_code_is_refused() -> None:
    secret = new_totp_secret()
    good = {totp_code(secret, NOW + 30 * o) for o in (-1, 0, 1)}
    wrong = next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in good)
    with pytest.raises(TotpInvalid):
        match_totp(secret, wrong, NOW)


def test_code_for_another_secret_is_refused() -> None:
    code = totp_code(new_totp_secret(), NOW)
    other = new_totp_secret()
    if code in {totp_code(other, NOW + 30 * o) for o in (-1, 0, 1)}:
        pytest.skip("code collision")
    with pytest.raises(TotpInvalid):
        match_totp(other, code, NOW)


def test_matched_step_lets_callers_refuse_reuse() -> None:
    secret = new_totp_secret()
    code = totp_code(secret, NOW)
    first = match_totp(secret, code, NOW)
    # Same code a few seconds later: same step, which a caller has already recorded.
    assert match_totp(secret, code, NOW + 10) == first


def test_steps_before_the_epoch_are_not_tried() -> None:
    code = totp_code(RFC_SECRET, 0)
    assert match_totp(RFC_SECRET, code, 5.0) == 0


def test_invalid_parameters_are_programming_errors() -> None:
    secret = new_totp_secret()
    with pytest.raises(ValueError, match="digits"):
        match_totp(secret, "123", NOW, digits=3)
    with pytest.raises(ValueError, match="step"):
        match_totp(secret, "123456", NOW, step=0)
    with pytest.raises(ValueError, match="window"):
        match_totp(secret, "123456", NOW, window=-1)


def test_corrupt_secret_is_a_value_error_not_a_401() -> None:
    with pytest.raises(binascii.Error):
        match_totp("not base32!!", "123456", NOW)


def test_provisioning_uri_round_trips_through_pyotp() -> None:
    secret = new_totp_secret()
    uri = provisioning_uri(secret, "alice@example.com", "Keyguard")
    parts = urlsplit(uri)
    assert parts.scheme == "otpauth"
    assert parts.netloc == "totp"
    query = parse_qs(parts.query)
    assert query["secret"] == [secret]
    assert query["issuer"] == ["Keyguard"]
    parsed = pyotp.parse_uri(uri)
    assert parsed.at(1_700_000_000) == pyotp.TOTP(secret).at(1_700_000_000)


def test_qr_svg_is_inline_svg() -> None:
    svg = qr_svg(provisioning_uri(new_totp_secret(), "alice@example.com", "Keyguard"))
    assert svg.startswith("<svg")
    assert svg.rstrip().endswith("</svg>")
    assert "<?xml" not in svg
