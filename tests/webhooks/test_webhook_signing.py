"""Signatures verify with the seed's own snippet and with the Standard Webhooks library."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from keyguard.webhooks.signing import (
    new_webhook_secret,
    seed_signature,
    signature_headers,
    standard_signature,
)

BODY = b'{"type":"photo.uploaded","data":{"id":"ph_1"}}'


# Copied verbatim from the seed's "Webhook Signature Verification" Python snippet.
def verify_webhook(body: bytes, signature: str, secret: str) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


def test_new_secret_is_whsec_and_32_random_bytes() -> None:
    secret = new_webhook_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    assert new_webhook_secret() != secret


def test_seed_signature_verifies_with_the_seed_snippet() -> None:
    secret = new_webhook_secret()
    assert verify_webhook(BODY, seed_signature(secret, BODY), secret)
    assert not verify_webhook(BODY + b" ", seed_signature(secret, BODY), secret)


def test_seed_signature_is_keyed_with_the_whole_whsec_string() -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    expected = hmac.new(secret.encode(), BODY, hashlib.sha256).hexdigest()
    assert seed_signature(secret, BODY) == "sha256=" + expected


def test_standard_signature_matches_the_spec_example() -> None:
    # Test vector from the Standard Webhooks spec / reference libraries.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    signature = standard_signature(
        secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}'
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_headers_verify_with_the_seed_snippet_and_standardwebhooks() -> None:
    secret = new_webhook_secret()
    ts = int(time.time())
    headers = signature_headers([secret], "msg_1", ts, BODY, "Keyguard")
    assert verify_webhook(BODY, headers["X-Keyguard-Signature"], secret)
    assert headers["webhook-id"] == "msg_1"
    assert headers["webhook-timestamp"] == str(ts)
    Webhook(secret).verify(BODY, headers)


def test_rotation_overlap_sends_one_v1_signature_per_secret() -> None:
    new, old = new_webhook_secret(), new_webhook_secret()
    headers = signature_headers([new, old], "msg_2", int(time.time()), BODY, "APTR")
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(new).verify(BODY, headers)
    Webhook(old).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_webhook_secret()).verify(BODY, headers)


def test_rotation_overlap_signs_the_seed_header_with_the_newest_secret() -> None:
    new, old = new_webhook_secret(), new_webhook_secret()
    headers = signature_headers([new, old], "msg_3", int(time.time()), BODY, "APTR")
    assert verify_webhook(BODY, headers["X-APTR-Signature"], new)
    assert not verify_webhook(BODY, headers["X-APTR-Signature"], old)


def test_tampered_body_fails_standard_verification() -> None:
    secret = new_webhook_secret()
    headers = signature_headers([secret], "msg_4", int(time.time()), BODY, "Keyguard")
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY + b"x", headers)


@pytest.mark.parametrize("msg_id", ["", "a.b", "has space", "line\nbreak", "x" * 257])
def test_message_id_that_could_confuse_the_signed_content_is_refused(msg_id: str) -> None:
    with pytest.raises(ValueError, match="msg_id"):
        standard_signature(new_webhook_secret(), msg_id, 1, BODY)


@pytest.mark.parametrize("secret", ["whsec_not*base64", "whsec_"])
def test_malformed_secret_is_refused(secret: str) -> None:
    with pytest.raises(ValueError, match="secret"):
        standard_signature(secret, "msg_1", 1, BODY)


def test_no_secret_or_bad_prefix_is_refused() -> None:
    with pytest.raises(ValueError, match="secret"):
        signature_headers([], "msg_1", 1, BODY, "Keyguard")
    with pytest.raises(ValueError, match="prefix"):
        signature_headers([new_webhook_secret()], "msg_1", 1, BODY, "Bad Prefix\r\n")
