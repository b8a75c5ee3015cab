from __future__ import annotations

import binascii
from collections.abc import Iterator

import httpx
import pytest

import keyguard.client
from keyguard.client import SignedRequestAuth, TotpAuth
from keyguard.client import auth as auth_module
from keyguard.clock import FrozenClock
from keyguard.crypto.request_signing import new_signing_secret, verify_signed_request
from keyguard.crypto.totp import match_totp, new_totp_secret
from keyguard.errors import SignatureInvalid

NOW = 1_700_000_010.0


def _capture() -> tuple[list[httpx.Request], httpx.MockTransport]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    return seen, httpx.MockTransport(handler)


def _server_verifies(request: httpx.Request, secret: str, prefix: str = "Keyguard") -> int:
    # What the server does with the raw request target and body bytes it received.
    return verify_signed_request(
        secret,
        request.method,
        request.url.raw_path.decode("ascii"),
        request.content,
        request.headers.get(f"X-{prefix}-Timestamp"),
        request.headers.get(f"X-{prefix}-Signature"),
        now=NOW + 1,
    )


def test_public_api_is_exported() -> None:
    assert keyguard.client.__all__ == ["SignedRequestAuth", "TotpAuth"]
    assert set(auth_module.__all__) == {"SignedRequestAuth", "TotpAuth"}


def test_signed_request_carries_key_id_timestamp_and_a_verifiable_signature() -> None:
    secret = new_signing_secret()
    seen, transport = _capture()
    auth = SignedRequestAuth("kg_key_123", secret, clock=FrozenClock(NOW))
    with httpx.Client(transport=transport, auth=auth) as client:
        client.post("https://api.test/v1/sessions?b=2&a=1", json={"delivery_mode": "poll"})
    (request,) = seen
    assert request.headers["X-API-Key"] == "kg_key_123"
    assert request.headers["X-Keyguard-Timestamp"] == str(int(NOW))
    assert request.headers["X-Keyguard-Signature"].startswith("sha256=")
    assert "Authorization" not in request.headers  # the secret never travels
    assert secret not in str(request.headers)
    assert _server_verifies(request, secret) == int(NOW)


def test_signature_covers_the_percent_encoded_path_as_sent() -> None:
    secret = new_signing_secret()
    seen, transport = _capture()
    auth = SignedRequestAuth("kid", secret, clock=FrozenClock(NOW))
    with httpx.Client(transport=transport, auth=auth) as client:
        client.get("https://api.test/v1/files/a%20b?q=%C3%A9&x=1")
    (request,) = seen
    assert request.url.raw_path == b"/v1/files/a%20b?q=%C3%A9&x=1"
    _server_verifies(request, secret)


def test_streamed_body_is_read_and_signed() -> None:
    secret = new_signing_secret()
    seen, transport = _capture()

    def chunks() -> Iterator[bytes]:
        yield b'{"a": '
        yield b"1}"

    auth = SignedRequestAuth("kid", secret, clock=FrozenClock(NOW))
    with httpx.Client(transport=transport, auth=auth) as client:
        client.post("https://api.test/v1/x", content=chunks())
    (request,) = seen
    assert request.content == b'{"a": 1}'
    _server_verifies(request, secret)


def test_tampered_body_fails_server_verification() -> None:
    secret = new_signing_secret()
    seen, transport = _capture()
    auth = SignedRequestAuth("kid", secret, clock=FrozenClock(NOW))
    with httpx.Client(transport=transport, auth=auth) as client:
        client.post("https://api.test/v1/x", content=b"amount=1")
    (request,) = seen
    with pytest.raises(SignatureInvalid):
        verify_signed_request(
            secret,
            "POST",
            "/v1/x",
            b"amount=1000",
            request.headers["X-Keyguard-Timestamp"],
            request.headers["X-Keyguard-Signature"],
            now=NOW,
        )


def test_custom_header_prefix_matches_the_seed() -> None:
    secret = new_signing_secret()
    seen, transport = _capture()
    auth = SignedRequestAuth("kid", secret, header_prefix="APTR", clock=FrozenClock(NOW))
    with httpx.Client(transport=transport, auth=auth) as client:
        client.delete("https://api.test/v1/x")
    (request,) = seen
    assert "X-APTR-Signature" in request.headers
    _server_verifies(request, secret, prefix="APTR")


async def test_signed_request_works_with_async_client() -> None:
    secret = new_signing_secret()
    seen, transport = _capture()
    auth = SignedRequestAuth("kid", secret, clock=FrozenClock(NOW))
    async with httpx.AsyncClient(transport=transport, auth=auth) as client:
        await client.put("https://api.test/v1/x?y=1", content=b"data")
    (request,) = seen
    _server_verifies(request, secret)


def test_repr_never_shows_secrets() -> None:
    secret = new_signing_secret()
    totp_secret = new_totp_secret()
    assert secret not in repr(SignedRequestAuth("kid", secret))
    assert totp_secret not in repr(TotpAuth(totp_secret, api_key="kg_live_secret"))
    assert "kg_live_secret" not in repr(TotpAuth(totp_secret, api_key="kg_live_secret"))


def test_bad_header_prefix_is_refused() -> None:
    with pytest.raises(ValueError, match="prefix"):
        SignedRequestAuth("kid", "s", header_prefix="X Y")


def test_totp_header_and_bearer_are_added() -> None:
    secret = new_totp_secret()
    seen, transport = _capture()
    auth = TotpAuth(secret, "APTR", api_key="aptr_live_xxxx", clock=FrozenClock(NOW))
    with httpx.Client(transport=transport, auth=auth) as client:
        client.post("https://api.test/v1/sessions", json={})
    (request,) = seen
    assert request.headers["Authorization"] == "Bearer aptr_live_xxxx"
    assert match_totp(secret, request.headers["X-APTR-TOTP"], NOW) == int(NOW // 30)


def test_totp_without_api_key_leaves_authorization_to_the_caller() -> None:
    seen, transport = _capture()
    auth = TotpAuth(new_totp_secret(), clock=FrozenClock(NOW))
    with httpx.Client(
        transport=transport, auth=auth, headers={"Authorization": "Bearer kg_live_1"}
    ) as client:
        client.get("https://api.test/v1/x")
    (request,) = seen
    assert request.headers["Authorization"] == "Bearer kg_live_1"
    assert len(request.headers["X-Keyguard-TOTP"]) == 6


def test_totp_never_sends_the_same_step_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = new_totp_secret()
    clock = FrozenClock(NOW)
    waited: list[float] = []

    def fake_sleep(seconds: float) -> None:
        waited.append(seconds)
        clock.advance(seconds)

    monkeypatch.setattr(auth_module, "_sleep", fake_sleep)
    seen, transport = _capture()
    with httpx.Client(transport=transport, auth=TotpAuth(secret, clock=clock)) as client:
        for _ in range(3):
            client.get("https://api.test/v1/x")
    steps = [match_totp(secret, r.headers["X-Keyguard-TOTP"], clock.now()) for r in seen]
    current = int(NOW // 30)
    # Same step, then the next one (within the server's +1 tolerance), then wait.
    assert steps == [current, current + 1, current + 2]
    assert waited == [pytest.approx(30 - NOW % 30)]


async def test_totp_async_flow_waits_without_blocking(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = new_totp_secret()
    clock = FrozenClock(NOW)

    async def fake_sleep(seconds: float) -> None:
        clock.advance(seconds)

    monkeypatch.setattr(auth_module, "_async_sleep", fake_sleep)
    seen, transport = _capture()
    async with httpx.AsyncClient(transport=transport, auth=TotpAuth(secret, clock=clock)) as c:
        for _ in range(3):
            await c.get("https://api.test/v1/x")
    steps = [match_totp(secret, r.headers["X-Keyguard-TOTP"], clock.now()) for r in seen]
    current = int(NOW // 30)
    assert steps == [current, current + 1, current + 2]
    assert clock.now() == pytest.approx((current + 1) * 30)


def test_totp_auth_fails_fast_on_a_bad_secret() -> None:
    with pytest.raises(binascii.Error):
        TotpAuth("not base32!!")
