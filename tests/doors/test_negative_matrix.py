"""Every per-key check, with the bad inputs an attacker would try, through every door.

Each test runs one check's scenario through the middleware, Keyguard's own
``POST /v1/sessions``, the verify API and the gateway; each refusal must carry the
check's own code (CONTRACT §2, §4).
"""

from __future__ import annotations

import base64

import pytest
from door_harness import BODY, DOORS, PATH, PREFIX, PROXY, UNTRUSTED, Kit, Outcome, Req

from keyguard.crypto.keys import IssuedKey

pytestmark = pytest.mark.parametrize("door", DOORS)


async def expect(kit: Kit, door: str, req: Req, code: str | None, *secrets: str) -> Outcome | None:
    if door == "verify" and req.transport:
        return None  # the calling service resolves the transport, not us
    out = await kit.call(door, req)
    assert out.code == code, (door, req, out.text)
    if code is None:
        assert out.status in (200, 201), out.text
    for secret in secrets:
        assert secret not in out.text
    return out


def bearer(issued: IssuedKey, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issued.key}", **extra}


# ---- IP allowlist -----------------------------------------------------------------------


async def test_ip_allowlist(kit: Kit, door: str) -> None:
    k = await kit.key(ip_allowlist=("198.51.100.0/24", "2001:db8::/32"))
    h = bearer(k)
    for peer, code in [
        ("198.51.100.7", None),
        ("198.51.100.0", None),  # CIDR edges are inside
        ("198.51.100.255", None),
        ("198.51.101.0", "ip_not_allowed"),  # one past the end
        ("198.51.99.255", "ip_not_allowed"),  # one before the start
        (UNTRUSTED, "ip_not_allowed"),
        ("::ffff:198.51.100.7", None),  # IPv4-mapped IPv6 is the IPv4 address
        ("::ffff:203.0.113.7", "ip_not_allowed"),
        ("2001:db8::1", None),
        ("2001:db9::1", "ip_not_allowed"),
    ]:
        await expect(kit, door, Req(h, peer=peer), code, k.secret)


async def test_forwarded_for_counts_only_behind_a_trusted_proxy(kit: Kit, door: str) -> None:
    k = await kit.key(ip_allowlist=("198.51.100.0/24",))
    xff = "X-Forwarded-For"
    # Spoofed by the client itself: changes nothing.
    await expect(
        kit, door, Req(bearer(k, **{xff: "198.51.100.7"}), transport=True), "ip_not_allowed"
    )
    # Through our proxy: the right-most untrusted entry is the client.
    for chain, code in [
        ("198.51.100.7", None),
        ("198.51.100.7, 10.0.0.9", None),  # a second trusted hop is skipped
        ("198.51.100.7, 203.0.113.9", "ip_not_allowed"),  # left part written by the client
        ("unknown", "ip_not_allowed"),
    ]:
        req = Req(bearer(k, **{xff: chain}), peer=PROXY, transport=True)
        await expect(kit, door, req, code)


# ---- allowed domains --------------------------------------------------------------------


async def test_allowed_domains(kit: Kit, door: str) -> None:
    k = await kit.key(allowed_domains=("*.example.com", "https://example.com"))
    for headers, code in [
        ({"Origin": "https://a.example.com"}, None),
        ({"Origin": "https://a.b.example.com"}, None),  # any depth
        ({"Origin": "https://example.com"}, None),  # listed on its own
        ({"Origin": "http://example.com"}, "origin_not_allowed"),  # scheme pinned
        ({"Origin": "https://evilexample.com"}, "origin_not_allowed"),
        ({"Origin": "https://example.com.evil.com"}, "origin_not_allowed"),
        ({"Origin": "https://a.example.com:8443"}, "origin_not_allowed"),  # other port
        ({"Origin": "null"}, "origin_not_allowed"),
        ({}, "origin_not_allowed"),  # neither Origin nor Referer
        ({"Referer": "https://app.example.com/page?x=1"}, None),
        ({"Referer": "https://example.com@evil.com/"}, "origin_not_allowed"),
        # A present Origin decides alone: a good Referer does not rescue it.
        ({"Origin": "https://evil.com", "Referer": "https://a.example.com/"}, "origin_not_allowed"),
    ]:
        await expect(kit, door, Req(bearer(k, **headers)), code)


# ---- TOTP -------------------------------------------------------------------------------


FULL_WIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + i) for i in range(10)))


async def test_totp(kit: Kit, door: str) -> None:
    k = await kit.key()
    secret = await kit.enable_totp(k.id)  # the confirmation spent the current step's code
    kit.clock.advance(60)  # two steps on: steps -1, 0 and +1 are all unused
    header = f"X-{PREFIX}-TOTP"
    wrong = next(c for c in ("000000", "111111", "222222") if c not in _window(kit, secret))
    for code_sent, expected in [
        (None, "totp_required"),
        (wrong, "totp_invalid"),
        (kit.totp(secret).translate(FULL_WIDTH), "totp_invalid"),
        (kit.totp(secret, 2), "totp_invalid"),  # two steps ahead
        (kit.totp(secret), None),
        (kit.totp(secret), "totp_invalid"),  # each code once
        (kit.totp(secret, -1), None),  # one step of drift either way
        (kit.totp(secret, 1), None),
        (kit.totp(secret, -1), "totp_invalid"),
    ]:
        extra = {} if code_sent is None else {header: code_sent}
        await expect(kit, door, Req(bearer(k, **extra)), expected, secret)


def _window(kit: Kit, secret: str) -> set[str]:
    return {kit.totp(secret, s) for s in range(-2, 3)}


async def test_totp_failures_are_throttled(kit: Kit, door: str) -> None:
    k = await kit.key()
    secret = await kit.enable_totp(k.id)
    kit.clock.advance(60)
    header = f"X-{PREFIX}-TOTP"
    wrong = next(c for c in ("000000", "111111", "222222") if c not in _window(kit, secret))
    # Five failures within a minute (4 are allowed in test_totp, which checks one key).
    for bad in (wrong, kit.totp(secret, -2), kit.totp(secret, 3), "12345", wrong):
        await expect(kit, door, Req(bearer(k, **{header: bad})), "totp_invalid")
    # Now even the right code is refused: guessing has stopped paying off.
    out = await expect(kit, door, Req(bearer(k, **{header: kit.totp(secret)})), "rate_limited")
    if out is not None and door != "verify":
        assert int(out.headers["retry-after"]) >= 1
    kit.clock.advance(180)
    await expect(kit, door, Req(bearer(k, **{header: kit.totp(secret)})), None)


# ---- signed requests --------------------------------------------------------------------


async def test_signed_requests(kit: Kit, door: str) -> None:
    k = await kit.key()
    secret = await kit.signing_secret(k.id)
    good = kit.signed(k.id, secret)
    await expect(kit, door, Req(good), None, secret)
    await expect(kit, door, Req(good), "signature_replayed", secret)
    for headers, body, path, code in [
        (kit.signed(k.id, secret, ts_offset=-301), BODY, PATH, "signature_expired"),
        (kit.signed(k.id, secret, ts_offset=301), BODY, PATH, "signature_expired"),
        (kit.signed(k.id, secret, ts_offset=-300), BODY, PATH, None),  # window edge
        (kit.signed(k.id, secret, ts_offset=300), BODY, PATH, None),
        (kit.signed(k.id, secret), BODY + b" ", PATH, "signature_invalid"),  # body tampered
        (kit.signed(k.id, secret, path=PATH + "?x=1"), BODY, PATH, "signature_invalid"),
        (kit.signed(k.id, secret, path=PATH), BODY, PATH + "?x=1", "signature_invalid"),
        (kit.signed(k.id, "kgsig_not-the-secret"), BODY, PATH, "signature_invalid"),
        ({"X-API-Key": k.id}, BODY, PATH, "signature_invalid"),  # unsigned bare id
    ]:
        await expect(kit, door, Req(headers, body=body, path=path), code, secret)
    upper = kit.signed(k.id, secret, ts_offset=1)
    upper[f"X-{PREFIX}-Signature"] = upper[f"X-{PREFIX}-Signature"].upper()
    await expect(kit, door, Req(upper), "signature_invalid")
    millis = {**kit.signed(k.id, secret), f"X-{PREFIX}-Timestamp": str(int(kit.clock.now() * 1000))}
    await expect(kit, door, Req(millis), "signature_invalid")
    # A key that requires signing refuses its full key without a signature...
    await expect(kit, door, Req(bearer(k)), "signature_invalid", secret)
    # ...and accepts it with one.
    both = {**kit.signed(k.id, secret, ts_offset=2), "Authorization": f"Bearer {k.key}"}
    del both["X-API-Key"]
    await expect(kit, door, Req(both), None)


async def test_a_bare_id_without_a_signing_secret_is_not_a_credential(kit: Kit, door: str) -> None:
    k = await kit.key()
    await expect(kit, door, Req(kit.signed(k.id, "kgsig_guess")), "invalid_key")


# ---- client certificates ----------------------------------------------------------------


async def test_client_certificates(kit: Kit, door: str) -> None:
    k = await kit.key()
    other = await kit.key()
    mine, theirs = kit.cert("mine"), kit.cert("theirs")
    future = kit.cert("future", valid_from=3600)
    short = kit.cert("short", valid_for=3700)  # expires 100 s after now
    for cert in (mine, future, short):
        await kit.add_cert(k.id, cert)
    await kit.add_cert(other.id, theirs)
    h = bearer(k)
    await expect(kit, door, Req(h, tls_cert_pem=mine.pem), None)
    await expect(kit, door, Req(h), "client_certificate_required")
    await expect(kit, door, Req(h, tls_cert_pem=theirs.pem), "client_certificate_invalid")
    await expect(kit, door, Req(h, tls_cert_pem=future.pem), "client_certificate_invalid")
    await expect(kit, door, Req(h, tls_cert_pem=short.pem), None)
    kit.clock.advance(200)
    await expect(kit, door, Req(h, tls_cert_pem=short.pem), "client_certificate_invalid")
    # Forwarded as RFC 9440 Client-Cert: a certificate is public, so without
    # KEYGUARD_CLIENT_CERT_HEADER naming the one header the proxy sets, none is believed,
    # even from a trusted proxy (test_client_cert_headers has the configured case).
    sf = {"Client-Cert": ":" + base64.b64encode(mine.der).decode() + ":"}
    await expect(kit, door, Req(bearer(k, **sf), transport=True), "client_certificate_required")
    req = Req(bearer(k, **sf), peer=PROXY, transport=True)
    await expect(kit, door, req, "client_certificate_required")
    # An untrusted peer's forged header does not replace its real (wrong) certificate.
    req = Req(bearer(k, **sf), tls_cert_pem=theirs.pem, transport=True)
    await expect(kit, door, req, "client_certificate_invalid")


# ---- rate limits ------------------------------------------------------------------------


async def test_rate_limit(kit: Kit, door: str) -> None:
    k = await kit.key(rate_limit=(3, 60))
    for remaining in (2, 1, 0):
        out = await expect(kit, door, Req(bearer(k)), None)
        if out is not None and door != "verify":
            assert out.headers["ratelimit-limit"] == "3"
            assert out.headers["ratelimit-remaining"] == str(remaining)
            assert int(out.headers["ratelimit-reset"]) >= 1
        elif out is not None:
            assert f'"remaining":{remaining}' in out.text.replace(" ", "")
    out = await expect(kit, door, Req(bearer(k)), "rate_limited")
    if out is not None and door != "verify":
        assert int(out.headers["retry-after"]) >= 1
        assert out.headers["ratelimit-remaining"] == "0"
    kit.clock.advance(120)  # the sliding window has moved past the burst
    await expect(kit, door, Req(bearer(k)), None)


async def test_a_refusal_by_another_check_still_reports_the_rate_limit(kit: Kit, door: str) -> None:
    k = await kit.key(ip_allowlist=("198.51.100.0/24",), rate_limit=(3, 60))
    await expect(kit, door, Req(bearer(k), peer="198.51.100.7"), None)  # one hit counted
    out = await expect(kit, door, Req(bearer(k), peer="192.0.2.1"), "ip_not_allowed")
    if out is not None and door != "verify":
        assert out.headers["ratelimit-limit"] == "3"
        assert out.headers["ratelimit-remaining"] == "2"  # the refusal counted nothing
        assert int(out.headers["ratelimit-reset"]) >= 1


async def test_a_bare_key_id_learns_nothing_about_the_rate_limit(kit: Kit, door: str) -> None:
    """The public id alone (a signed request) proves nothing until its signature checks."""
    k = await kit.key(rate_limit=(3, 60))
    await kit.signing_secret(k.id)
    forged = kit.signed(k.id, "not-the-signing-secret")
    out = await expect(kit, door, Req(forged), "signature_invalid")
    if out is not None:
        assert "ratelimit-limit" not in out.headers


# ---- HTTPS only -------------------------------------------------------------------------


async def test_https_only(kit: Kit, door: str) -> None:
    k = await kit.key()
    await expect(kit, door, Req(bearer(k), scheme="http"), "https_required")
    xfp = {"X-Forwarded-Proto": "https"}
    await expect(kit, door, Req(bearer(k, **xfp), scheme="http", transport=True), "https_required")
    await expect(kit, door, Req(bearer(k, **xfp), scheme="http", peer=PROXY, transport=True), None)
    plain = {"X-Forwarded-Proto": "http"}
    req = Req(bearer(k, **plain), scheme="http", peer=PROXY, transport=True)
    await expect(kit, door, req, "https_required")


# ---- order: no state is consumed by a refused request -----------------------------------


async def test_a_refused_request_consumes_no_state(kit: Kit, door: str) -> None:
    k = await kit.key(ip_allowlist=("198.51.100.0/24",), rate_limit=(1, 60))
    secret = await kit.signing_secret(k.id)
    signed = kit.signed(k.id, secret)
    # Refused by the IP check: neither the signature nor the single allowed hit is spent.
    await expect(kit, door, Req(signed), "ip_not_allowed")
    await expect(kit, door, Req(signed, peer="198.51.100.7"), None)
    await expect(
        kit, door, Req(kit.signed(k.id, secret, ts_offset=1), peer="198.51.100.7"), "rate_limited"
    )


async def test_every_restriction_at_once(kit: Kit, door: str) -> None:
    k = await kit.key(
        ip_allowlist=("198.51.100.0/24",),
        allowed_domains=("*.example.com",),
        rate_limit=(100, 60),
        scopes=("sessions:write",),
    )
    cert = kit.cert("all")
    await kit.add_cert(k.id, cert)
    signing = await kit.signing_secret(k.id)
    totp = await kit.enable_totp(k.id)
    kit.clock.advance(30)
    headers = {
        **kit.signed(k.id, signing),
        "Origin": "https://app.example.com",
        f"X-{PREFIX}-TOTP": kit.totp(totp),
    }
    out = await expect(kit, door, Req(headers, peer="198.51.100.7", tls_cert_pem=cert.pem), None)
    assert out is not None
    if door == "gateway":
        up = out.upstream_headers
        assert up[f"x-{PREFIX.lower()}-key-id"] == k.id
        assert up[f"x-{PREFIX.lower()}-scopes"] == "sessions:write"
        assert f"x-{PREFIX.lower()}-totp" not in up
        assert "x-api-key" not in up
