"""The sender against a real receiver on loopback: outcomes, limits, and DNS pinning."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from keyguard.webhooks.schedule import is_retryable
from keyguard.webhooks.sender import send_webhook

LOOPBACK = [ipaddress.ip_network("127.0.0.0/8")]
BODY = b'{"type":"photo.uploaded"}'


def pinned(*answers: str, calls: list[str] | None = None):
    """A resolver that answers from a script, one answer per call, repeating the last."""
    script = list(answers)

    async def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        return [script.pop(0) if len(script) > 1 else script[0]]

    return resolve


async def test_2xx_is_a_success_and_the_body_arrives(receiver) -> None:
    result = await send_webhook(
        receiver.url("/ok"), BODY, {"X-Keyguard-Signature": "sha256=ab"}, allow_private=LOOPBACK
    )
    assert result.success
    assert (result.status_code, result.error) == (200, None)
    assert result.response_excerpt == "thanks"
    assert result.latency_ms > 0
    assert result.url == receiver.url("/ok")
    seen = receiver.requests[0]
    assert (seen.method, seen.path, seen.body) == ("POST", "/ok", BODY)
    assert seen.headers["x-keyguard-signature"] == "sha256=ab"
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["accept-encoding"] == "identity"


async def test_500_is_a_retryable_failure(receiver) -> None:
    result = await send_webhook(receiver.url("/fail"), BODY, {}, allow_private=LOOPBACK)
    assert (result.status_code, result.success, result.error) == (500, False, None)
    assert result.response_excerpt == "boom"
    assert is_retryable(result)


async def test_slow_endpoint_times_out(receiver) -> None:
    result = await send_webhook(
        receiver.url("/slow"), BODY, {}, allow_private=LOOPBACK, timeout=0.3
    )
    assert (result.status_code, result.error) == (None, "timeout")
    assert 250 <= result.latency_ms < 2000
    assert is_retryable(result)


async def test_redirect_to_a_private_address_is_not_followed(receiver) -> None:
    result = await send_webhook(receiver.url("/redirect"), BODY, {}, allow_private=LOOPBACK)
    assert (result.status_code, result.error, result.success) == (
        302,
        "redirect_not_followed",
        False,
    )
    assert is_retryable(result)
    assert [r.path for r in receiver.requests] == ["/redirect"]


async def test_oversized_response_is_cut_at_the_limit_and_says_so(receiver) -> None:
    result = await send_webhook(
        receiver.url("/big"), BODY, {}, allow_private=LOOPBACK, max_response_bytes=4096
    )
    assert result.success  # the status decides; the cut is only reported
    assert (result.status_code, result.error) == (200, "response_truncated")
    assert result.response_excerpt == "A" * 4096


async def test_a_body_of_exactly_the_limit_is_not_truncated(receiver) -> None:
    result = await send_webhook(
        receiver.url("/ok"), BODY, {}, allow_private=LOOPBACK, max_response_bytes=len("thanks")
    )
    assert (result.success, result.error, result.response_excerpt) == (True, None, "thanks")
    cut = await send_webhook(
        receiver.url("/ok"), BODY, {}, allow_private=LOOPBACK, max_response_bytes=5
    )
    assert (cut.success, cut.error, cut.response_excerpt) == (True, "response_truncated", "thank")


async def test_a_redirect_with_a_long_body_still_reports_the_redirect(receiver) -> None:
    result = await send_webhook(
        receiver.url("/redirect"), BODY, {}, allow_private=LOOPBACK, max_response_bytes=1
    )
    assert result.error == "redirect_not_followed"


async def test_reading_stops_at_the_limit_instead_of_draining_the_body(receiver) -> None:
    # /drip announces 10 MB and stalls after 8 KiB: draining it would hit the timeout.
    result = await send_webhook(
        receiver.url("/drip"), BODY, {}, allow_private=LOOPBACK, timeout=3, max_response_bytes=100
    )
    assert (result.success, result.error) == (True, "response_truncated")
    assert result.response_excerpt == "B" * 100
    assert result.latency_ms < 2000


async def test_retry_after_header_is_parsed(receiver) -> None:
    result = await send_webhook(receiver.url("/busy"), BODY, {}, allow_private=LOOPBACK)
    assert (result.status_code, result.retry_after) == (429, 120.0)


async def test_gone_endpoint_reports_410(receiver) -> None:
    result = await send_webhook(receiver.url("/gone"), BODY, {}, allow_private=LOOPBACK)
    assert result.status_code == 410
    assert not is_retryable(result)


async def test_loopback_receiver_is_blocked_without_allow_private(receiver) -> None:
    result = await send_webhook(receiver.url("/ok", scheme="https"), BODY, {}, allow_private=[])
    assert (result.status_code, result.error) == (None, "ssrf_blocked")
    assert receiver.requests == []


async def test_host_name_resolving_to_loopback_is_blocked(receiver) -> None:
    result = await send_webhook(
        receiver.url("/ok", scheme="https", host="evil.example"),
        BODY,
        {},
        allow_private=[],
        resolver=pinned("127.0.0.1"),
    )
    assert result.error == "ssrf_blocked"
    assert receiver.requests == []


async def test_plain_http_to_a_public_address_is_refused_at_send_time() -> None:
    result = await send_webhook(
        "http://hooks.example/in",
        BODY,
        {},
        allow_private=LOOPBACK,
        resolver=pinned("93.184.215.14"),
    )
    assert result.error == "https_required"


async def test_unresolvable_host_is_a_dns_failure() -> None:
    async def nxdomain(host: str, port: int) -> list[str]:
        raise OSError("no such host")

    result = await send_webhook(
        "https://nowhere.example/", BODY, {}, allow_private=[], resolver=nxdomain
    )
    assert (result.error, result.status_code) == ("dns_failed", None)
    assert is_retryable(result)


async def test_malformed_url_is_reported_not_raised() -> None:
    result = await send_webhook("https://0x7f.1/", BODY, {}, allow_private=LOOPBACK)
    assert result.error == "invalid_url"
    assert not is_retryable(result)


async def test_closed_port_is_a_connect_failure(receivers) -> None:
    receiver = await receivers.start()
    port = receiver.port
    await receivers.close()
    result = await send_webhook(
        f"http://127.0.0.1:{port}/ok", BODY, {}, allow_private=LOOPBACK, timeout=2
    )
    assert result.error == "connect_failed"


async def test_next_checked_address_is_tried_when_one_refuses(receivers) -> None:
    live = await receivers.start("127.0.0.2")

    async def two(host: str, port: int) -> list[str]:
        return ["127.0.0.3", "127.0.0.2"]  # nothing listens on 127.0.0.3

    result = await send_webhook(
        f"http://two.example:{live.port}/ok", BODY, {}, allow_private=LOOPBACK, resolver=two
    )
    assert result.success
    assert [r.local_address for r in live.requests] == ["127.0.0.2"]


async def test_resolver_answer_that_is_not_an_ip_is_a_dns_failure() -> None:
    async def garbage(host: str, port: int) -> list[str]:
        return ["not-an-ip"]

    result = await send_webhook("https://g.example/", BODY, {}, allow_private=[], resolver=garbage)
    assert result.error == "dns_failed"


async def test_caller_host_header_cannot_override_the_url(receiver) -> None:
    await send_webhook(
        receiver.url("/ok"), BODY, {"host": "internal.admin"}, allow_private=LOOPBACK
    )
    assert receiver.requests[0].headers["host"] == f"127.0.0.1:{receiver.port}"


async def test_each_header_is_sent_once_the_callers_replacing_defaults(receiver) -> None:
    given = {
        "content-type": "application/cloudevents+json",
        "Accept-Encoding": "gzip",
        "HOST": "internal.admin",
        "webhook-id": "msg_1",
    }
    await send_webhook(receiver.url("/ok"), BODY, given, allow_private=LOOPBACK)
    seen = receiver.requests[0]
    assert len(seen.names) == len(set(seen.names)), seen.names
    assert seen.headers["content-type"] == "application/cloudevents+json"
    assert seen.headers["accept-encoding"] == "identity"  # ours: never a compressed answer
    assert seen.headers["host"] == f"127.0.0.1:{receiver.port}"
    assert seen.headers["webhook-id"] == "msg_1"
    assert seen.headers["user-agent"] == "Keyguard-Webhooks/1"


# ---- DNS pinning ------------------------------------------------------------------------


async def test_dns_rebinding_never_reaches_the_second_answer(receivers) -> None:
    # The "safe" receiver is 127.0.0.2 (the only allowed address); the attacker's DNS
    # answers 127.0.0.1 from the second query on. Pinning means there is no second query.
    safe = await receivers.start("127.0.0.2")
    try:
        internal = await receivers.start("127.0.0.1", safe.port)
    except OSError:
        pytest.skip("port taken on 127.0.0.1")
    calls: list[str] = []
    result = await send_webhook(
        f"http://rebind.example:{safe.port}/ok",
        BODY,
        {},
        allow_private=[ipaddress.ip_network("127.0.0.2/32")],
        resolver=pinned("127.0.0.2", "127.0.0.1", calls=calls),
    )
    assert result.success
    assert calls == ["rebind.example"]
    assert internal.requests == []
    [seen] = safe.requests
    assert seen.local_address == "127.0.0.2"
    assert seen.headers["host"] == f"rebind.example:{safe.port}"


async def test_mixed_answer_with_a_forbidden_address_is_refused(receivers) -> None:
    safe = await receivers.start("127.0.0.2")

    async def mixed(host: str, port: int) -> list[str]:
        return ["127.0.0.2", "127.0.0.1"]

    result = await send_webhook(
        f"http://mixed.example:{safe.port}/ok",
        BODY,
        {},
        allow_private=[ipaddress.ip_network("127.0.0.2/32")],
        resolver=mixed,
    )
    assert result.error == "ssrf_blocked"
    assert safe.requests == []


# ---- TLS: SNI and certificate checked against the host name, not the pinned IP ----------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hooks.example.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("hooks.example.test")]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
async def tls_receiver(receivers, tls_files):
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(*tls_files)
    return await receivers.start(ssl_context=server_ctx)


@pytest.fixture
def client_ctx(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tls_files[0]))


async def test_https_to_pinned_ip_keeps_sni_host_and_certificate_name(
    tls_receiver,
    client_ctx: ssl.SSLContext,
) -> None:
    url = tls_receiver.url("/ok", scheme="https", host="hooks.example.test")
    result = await send_webhook(
        url,
        BODY,
        {},
        allow_private=LOOPBACK,
        resolver=pinned("127.0.0.1"),
        ssl_context=client_ctx,
    )
    assert (result.status_code, result.error) == (200, None)
    assert tls_receiver.sni == ["hooks.example.test"]
    assert tls_receiver.requests[0].headers["host"] == f"hooks.example.test:{tls_receiver.port}"


async def test_certificate_for_another_name_is_a_tls_error(
    tls_receiver,
    client_ctx: ssl.SSLContext,
) -> None:
    url = tls_receiver.url("/ok", scheme="https", host="other.example.test")
    result = await send_webhook(
        url,
        BODY,
        {},
        allow_private=LOOPBACK,
        resolver=pinned("127.0.0.1"),
        ssl_context=client_ctx,
    )
    assert (result.status_code, result.error) == (None, "tls_error")
    assert tls_receiver.requests == []


async def test_untrusted_certificate_is_a_tls_error(tls_receiver) -> None:
    url = tls_receiver.url("/ok", scheme="https", host="hooks.example.test")
    result = await send_webhook(url, BODY, {}, allow_private=LOOPBACK, resolver=pinned("127.0.0.1"))
    assert result.error == "tls_error"
