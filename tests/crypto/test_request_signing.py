from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from keyguard.crypto.request_signing import (
    check_timestamp,
    compute_signature,
    new_signing_secret,
    verify_signature,
    verify_signed_request,
)
from keyguard.errors import SignatureExpired, SignatureInvalid

SECRET = "kgsig_" + "A" * 43
NOW = 1_700_000_000.0
TS = "1700000000"
BODY = b'{"delivery_mode": "poll"}'


def _sign(method: str = "POST", path: str = "/v1/sessions?x=1", body: bytes = BODY) -> str:
    return compute_signature(SECRET, method, path, body, TS)


def test_new_signing_secret_is_prefixed_unpadded_base64url_of_32_bytes() -> None:
    secret = new_signing_secret()
    assert secret.startswith("kgsig_")
    raw = secret.removeprefix("kgsig_")
    assert "=" not in raw
    assert len(base64.urlsafe_b64decode(raw + "=")) == 32
    assert new_signing_secret() != secret


def test_signature_is_the_contract_hmac_computed_independently() -> None:
    expected = hmac.new(
        SECRET.encode(), b"POST/v1/sessions?x=1" + BODY + TS.encode(), hashlib.sha256
    ).hexdigest()
    assert _sign() == "sha256=" + expected


def test_method_is_upper_cased() -> None:
    assert _sign(method="post") == _sign(method="POST")


def test_valid_signature_verifies() -> None:
    verify_signature(SECRET, "POST", "/v1/sessions?x=1", BODY, TS, _sign())
    assert verify_signed_request(
        SECRET, "POST", "/v1/sessions?x=1", BODY, TS, _sign(), now=NOW + 10
    ) == int(TS)


@pytest.mark.parametrize(
    ("method", "path", "body", "ts"),
    [
        ("PUT", "/v1/sessions?x=1", BODY, TS),
        ("POST", "/v1/sessions?x=2", BODY, TS),
        ("POST", "/v1/sessions", BODY, TS),
        ("POST", "/v1/Sessions?x=1", BODY, TS),
        ("POST", "/v1/sessions?x=1", BODY + b" ", TS),
        ("POST", "/v1/sessions?x=1", b"", TS),
        ("POST", "/v1/sessions?x=1", BODY, "1700000001"),
    ],
)
def test_tampered_request_is_refused(method: str, path: str, body: bytes, ts: str) -> None:
    with pytest.raises(SignatureInvalid):
        verify_signature(SECRET, method, path, body, ts, _sign())


def test_other_secret_is_refused() -> None:
    with pytest.raises(SignatureInvalid):
        verify_signature(new_signing_secret(), "POST", "/v1/sessions?x=1", BODY, TS, _sign())


@pytest.mark.parametrize(
    "mangle",
    [
        lambda s: s.upper(),  # upper-case hex
        lambda s: "SHA256=" + s[7:],
        lambda s: s[7:],  # no prefix
        lambda s: s + " ",
        lambda s: " " + s,
        lambda s: s[:-1],
        lambda s: s + "0",
        lambda s: "sha256=" + base64.b64encode(bytes.fromhex(s[7:])).decode(),
        lambda s: "sha1=" + s[7:],
        lambda s: "",
    ],
)
def test_only_the_exact_lowercase_hex_form_is_tolerated(mangle: object) -> None:
    assert callable(mangle)
    with pytest.raises(SignatureInvalid):
        verify_signature(SECRET, "POST", "/v1/sessions?x=1", BODY, TS, mangle(_sign()))


def test_missing_signature_is_refused() -> None:
    with pytest.raises(SignatureInvalid):
        verify_signature(SECRET, "POST", "/v1/sessions?x=1", BODY, TS, None)


def test_non_ascii_method_or_timestamp_is_invalid_not_a_crash() -> None:
    with pytest.raises(SignatureInvalid):
        verify_signature(SECRET, "PÖST", "/v1/sessions?x=1", BODY, TS, _sign())
    with pytest.raises(SignatureInvalid):
        verify_signature(SECRET, "POST", "/v1/sessions?x=1", BODY, "\uff11\uff17", _sign())


# ---- timestamps ------------------------------------------------------------------------


@pytest.mark.parametrize("delta", [-300, -299, 0, 299, 300])
def test_timestamp_within_five_minutes_is_accepted(delta: int) -> None:
    assert check_timestamp(str(int(NOW) + delta), NOW) == int(NOW) + delta


@pytest.mark.parametrize("delta", [-301, 301, -86_400, 86_400])
def test_stale_or_future_timestamp_is_expired(delta: int) -> None:
    with pytest.raises(SignatureExpired):
        check_timestamp(str(int(NOW) + delta), NOW)


def test_custom_window() -> None:
    assert check_timestamp(str(int(NOW) - 60), NOW, window=60) == int(NOW) - 60
    with pytest.raises(SignatureExpired):
        check_timestamp(str(int(NOW) - 61), NOW, window=60)


@pytest.mark.parametrize(
    "ts",
    [
        None,
        "",
        " 1700000000",
        "1700000000 ",
        "+1700000000",
        "-1700000000",
        "1700000000.0",
        "1.7e9",
        "0x6553f100",
        "\uff11\uff17" + "\uff10" * 8,  # full-width digits
        "Tue, 14 Nov 2023 22:13:20 GMT",
        "01700000000",  # leading zero: not canonical
        "001700000000",
    ],
)
def test_missing_or_non_decimal_timestamp_is_invalid(ts: str | None) -> None:
    with pytest.raises(SignatureInvalid):
        check_timestamp(ts, NOW)


def test_millisecond_timestamp_is_invalid_with_a_helpful_detail() -> None:
    with pytest.raises(SignatureInvalid) as info:
        check_timestamp("1700000000000", NOW)
    assert "seconds" in str(info.value.detail)


def test_signed_request_checks_the_clock_before_the_signature() -> None:
    with pytest.raises(SignatureExpired):
        verify_signed_request(SECRET, "POST", "/v1/sessions?x=1", BODY, TS, _sign(), now=NOW + 301)
    with pytest.raises(SignatureInvalid):
        verify_signed_request(SECRET, "POST", "/v1/sessions?x=1", BODY, None, _sign(), now=NOW)


def test_errors_never_echo_the_secret_or_expected_signature() -> None:
    with pytest.raises(SignatureInvalid) as info:
        verify_signature(SECRET, "POST", "/v1/sessions?x=1", BODY, TS, "sha256=" + "0" * 64)
    text = str(info.value) + repr(info.value) + str(info.value.to_problem())
    assert SECRET not in text
    assert _sign()[7:] not in text


def test_a_leading_zero_cannot_move_a_byte_between_body_and_timestamp() -> None:
    """Defect 4 of the review: "amount=100" + "1700000000" and "amount=10" +
    "01700000000" are the same signed bytes; only the canonical one is accepted."""
    secret = new_signing_secret()
    ts = str(int(NOW))
    signature = compute_signature(secret, "POST", "/pay", b"amount=100", ts)
    assert compute_signature(secret, "POST", "/pay", b"amount=10", "0" + ts) == signature
    with pytest.raises(SignatureInvalid, match="leading zeros"):
        check_timestamp("0" + ts, NOW)
