"""Managing per-key restrictions over the API (CONTRACT §3): TOTP, certificates, signing,
IP allowlists and allowed domains. Secrets are shown once and never again."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pyotp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select

from helpers import POLL_SESSION, bearer, create_key, self_signed
from keyguard.audit.models import AuditEvent
from keyguard.client.auth import SignedRequestAuth, TotpAuth
from keyguard.crypto.request_signing import compute_signature
from keyguard.keys.models import ApiKey
from keyguard.usage.anomalies import check_counts


def _pem(cn: str, *, days: float = 30, start_days: float = -1, with_key: bool = False) -> str:
    start = datetime.now(UTC) + timedelta(days=start_days)
    cert, key = self_signed(cn, start, start + timedelta(days=days))
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    if with_key:
        pem += key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
    return pem


async def _audit_text(runtime) -> str:
    async with runtime.sessions() as db:
        rows = (await db.execute(select(AuditEvent))).scalars()
        return json.dumps([[r.action, r.data] for r in rows])


# ---- TOTP -------------------------------------------------------------------------------


async def test_totp_enrolment_confirmation_use_and_removal(
    client, root_headers, project_id, clock, runtime
):
    key = await create_key(client, root_headers, project_id)
    r = await client.post(f"/v1/keys/{key['id']}/totp", headers=root_headers)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    enrol = r.json()
    secret = enrol["secret"]
    assert len(secret) == 32  # 160 bits of base32
    uri = urlsplit(enrol["otpauth_uri"])
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    assert parse_qs(uri.query)["issuer"] == ["Keyguard"]
    assert parse_qs(uri.query)["secret"] == [secret]
    assert enrol["qr_svg"].startswith("<svg")

    # Not on until confirmed: requests without a code still pass.
    ok = await client.post("/v1/sessions", json=POLL_SESSION, headers=bearer(key["key"]))
    assert ok.status_code == 201

    app = pyotp.TOTP(secret)  # an independent client, as an authenticator app would be
    window = {app.at(clock.now() + 30 * step) for step in (-1, 0, 1)}
    wrong = next(c for c in ("000000", "111111", "222222", "333333") if c not in window)
    r = await client.post(
        f"/v1/keys/{key['id']}/totp/confirm", json={"code": wrong}, headers=root_headers
    )
    assert (r.status_code, r.json()["code"]) == (422, "totp_invalid")
    r = await client.post(
        f"/v1/keys/{key['id']}/totp/confirm",
        json={"code": app.at(clock.now())},
        headers=root_headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["totp_enabled"] is True
    assert secret not in r.text

    r = await client.post("/v1/sessions", json=POLL_SESSION, headers=bearer(key["key"]))
    assert (r.status_code, r.json()["code"]) == (401, "totp_required")
    assert "www-authenticate" in r.headers
    # The confirmation code is spent; the next step's code works (±1 step), once.
    code = app.at(clock.now() + 30)
    headers = {**bearer(key["key"]), "X-APTR-TOTP": code}
    assert (
        await client.post("/v1/sessions", json=POLL_SESSION, headers=headers)
    ).status_code == 201
    r = await client.post("/v1/sessions", json=POLL_SESSION, headers=headers)
    assert (r.status_code, r.json()["code"]) == (401, "totp_invalid")

    # Enrolling again while on would lock clients out: refused.
    r = await client.post(f"/v1/keys/{key['id']}/totp", headers=root_headers)
    assert r.status_code == 409
    assert (
        await client.delete(f"/v1/keys/{key['id']}/totp", headers=root_headers)
    ).status_code == 204
    r = await client.post("/v1/sessions", json=POLL_SESSION, headers=bearer(key["key"]))
    assert r.status_code == 201
    got = await client.get(f"/v1/keys/{key['id']}", headers=root_headers)
    assert got.json()["totp_enabled"] is False
    assert secret not in got.text
    audit = await _audit_text(runtime)
    assert secret not in audit
    for change in ("totp_enrolment_started", "totp_enabled", "totp_disabled"):
        assert change in audit


async def test_totp_is_sealed_at_rest(client, root_headers, project_id, runtime):
    key = await create_key(client, root_headers, project_id)
    secret = (await client.post(f"/v1/keys/{key['id']}/totp", headers=root_headers)).json()[
        "secret"
    ]
    async with runtime.sessions() as db:
        row = await db.get(ApiKey, key["id"])
    assert row.totp_secret_sealed
    assert secret not in row.totp_secret_sealed
    assert runtime.envelope.open(row.totp_secret_sealed, context=f"totp:{key['id']}") == secret


async def test_confirm_without_enrolment_is_409(client, root_headers, project_id):
    key = await create_key(client, root_headers, project_id)
    r = await client.post(
        f"/v1/keys/{key['id']}/totp/confirm", json={"code": "123456"}, headers=root_headers
    )
    assert r.status_code == 409


async def test_httpx_totp_auth_class_works_against_a_totp_key(
    client, root_headers, project_id, clock
):
    key = await create_key(client, root_headers, project_id)
    secret = (await client.post(f"/v1/keys/{key['id']}/totp", headers=root_headers)).json()[
        "secret"
    ]
    await client.post(
        f"/v1/keys/{key['id']}/totp/confirm",
        json={"code": pyotp.TOTP(secret).at(clock.now())},
        headers=root_headers,
    )
    clock.advance(30)
    auth = TotpAuth(secret, header_prefix="APTR", api_key=key["key"], clock=clock)
    r = await client.post("/v1/sessions", json=POLL_SESSION, auth=auth)
    assert r.status_code == 201, r.text


# ---- client certificates ----------------------------------------------------------------


async def test_certificate_registration_listing_and_removal(
    client, root_headers, project_id, runtime
):
    key = await create_key(client, root_headers, project_id)
    pem = _pem("client-a")
    r = await client.post(
        f"/v1/keys/{key['id']}/certificates", json={"pem": pem}, headers=root_headers
    )
    assert r.status_code == 201, r.text
    cert = r.json()
    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
    assert cert["fingerprint_sha256"] == hashlib.sha256(der).hexdigest()
    assert cert["subject"] == "CN=client-a"
    r = await client.post(
        f"/v1/keys/{key['id']}/certificates", json={"pem": pem}, headers=root_headers
    )
    assert r.status_code == 409
    listed = (await client.get(f"/v1/keys/{key['id']}/certificates", headers=root_headers)).json()
    assert [c["fingerprint_sha256"] for c in listed["data"]] == [cert["fingerprint_sha256"]]
    shown = (await client.get(f"/v1/keys/{key['id']}", headers=root_headers)).json()
    assert shown["certificates"][0]["fingerprint_sha256"] == cert["fingerprint_sha256"]
    # Every response showing the key's settings shows its pinned certificates.
    page = await client.get(f"/v1/projects/{project_id}/keys", headers=root_headers)
    [in_list] = [k for k in page.json()["data"] if k["id"] == key["id"]]
    assert [c["fingerprint_sha256"] for c in in_list["certificates"]] == [
        cert["fingerprint_sha256"]
    ]
    other = await create_key(client, root_headers, project_id)
    [without] = [
        k
        for k in (await client.get(f"/v1/projects/{project_id}/keys", headers=root_headers)).json()[
            "data"
        ]
        if k["id"] == other["id"]
    ]
    assert without["certificates"] == []

    # With a certificate pinned, a request without one is refused at once (cache dropped).
    r = await client.post("/v1/sessions", json=POLL_SESSION, headers=bearer(key["key"]))
    assert (r.status_code, r.json()["code"]) == (403, "client_certificate_required")

    fp = cert["fingerprint_sha256"]
    colon = ":".join(fp[i : i + 2] for i in range(0, 64, 2)).upper()  # as openssl prints it
    r = await client.delete(f"/v1/keys/{key['id']}/certificates/{colon}", headers=root_headers)
    assert r.status_code == 204
    r = await client.delete(f"/v1/keys/{key['id']}/certificates/{fp}", headers=root_headers)
    assert r.status_code == 404
    r = await client.post("/v1/sessions", json=POLL_SESSION, headers=bearer(key["key"]))
    assert r.status_code == 201
    audit = await _audit_text(runtime)
    assert "certificate_added" in audit
    assert "certificate_removed" in audit


async def test_regenerated_and_rotated_keys_show_their_certificates(
    client, root_headers, project_id
):
    key = await create_key(client, root_headers, project_id)
    r = await client.post(
        f"/v1/keys/{key['id']}/certificates", json={"pem": _pem("client-r")}, headers=root_headers
    )
    fingerprint = r.json()["fingerprint_sha256"]
    regenerated = await client.post(f"/v1/keys/{key['id']}/regenerate", headers=root_headers)
    assert [c["fingerprint_sha256"] for c in regenerated.json()["certificates"]] == [fingerprint]
    rotated = await client.post(
        f"/v1/keys/{key['id']}/rotate", json={"grace_seconds": 60}, headers=root_headers
    )
    assert rotated.status_code == 201, rotated.text
    assert [c["fingerprint_sha256"] for c in rotated.json()["certificates"]] == [fingerprint]


@pytest.mark.parametrize(
    ("pem", "fragment"),
    [
        ("not a certificate", "no PEM 'CERTIFICATE' block"),
        (_pem("k", with_key=True), "private key"),
        (_pem("a") + _pem("b"), "2 certificates"),
        (_pem("old", days=1, start_days=-10), "expired"),
        ("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----", "base64"),
    ],
)
async def test_bad_certificate_uploads_are_422(client, root_headers, project_id, pem, fragment):
    key = await create_key(client, root_headers, project_id)
    r = await client.post(
        f"/v1/keys/{key['id']}/certificates", json={"pem": pem}, headers=root_headers
    )
    assert (r.status_code, r.json()["code"]) == (422, "validation_failed")
    assert fragment in r.json()["detail"]
    assert "PRIVATE" not in r.text


# ---- signing secrets --------------------------------------------------------------------


async def test_signing_secret_is_shown_once_and_required_after(
    client, root_headers, project_id, clock, runtime
):
    key = await create_key(client, root_headers, project_id)
    r = await client.post(f"/v1/keys/{key['id']}/signing-secret", headers=root_headers)
    assert r.status_code == 201
    assert r.headers["cache-control"] == "no-store"
    secret = r.json()["signing_secret"]
    assert set(r.json()) == {"signing_secret"}
    shown = await client.get(f"/v1/keys/{key['id']}", headers=root_headers)
    assert shown.json()["require_signature"] is True
    assert secret not in shown.text
    assert secret not in await _audit_text(runtime)
    async with runtime.sessions() as db:
        row = await db.get(ApiKey, key["id"])
    assert secret not in row.signing_secret_sealed

    r = await client.post("/v1/sessions", json=POLL_SESSION, headers=bearer(key["key"]))
    assert (r.status_code, r.json()["code"]) == (401, "signature_invalid")
    auth = SignedRequestAuth(key["id"], secret, header_prefix="APTR", clock=clock)
    r = await client.post("/v1/sessions?via=httpx-auth", json=POLL_SESSION, auth=auth)
    assert r.status_code == 201, r.text
    assert "Authorization" not in r.request.headers  # the secret never travelled

    # A new secret replaces the old one at once.
    new = (await client.post(f"/v1/keys/{key['id']}/signing-secret", headers=root_headers)).json()
    clock.advance(1)
    r = await client.post("/v1/sessions", json=POLL_SESSION, auth=auth)
    assert (r.status_code, r.json()["code"]) == (401, "signature_invalid")
    auth = SignedRequestAuth(key["id"], new["signing_secret"], header_prefix="APTR", clock=clock)
    assert (await client.post("/v1/sessions", json=POLL_SESSION, auth=auth)).status_code == 201
    r = await client.delete(f"/v1/keys/{key['id']}/signing-secret", headers=root_headers)
    assert r.status_code == 204
    r = await client.post("/v1/sessions", json=POLL_SESSION, headers=bearer(key["key"]))
    assert r.status_code == 201


async def test_restrictions_of_a_revoked_key_cannot_change(client, root_headers, project_id):
    key = await create_key(client, root_headers, project_id)
    await client.delete(f"/v1/keys/{key['id']}", headers=root_headers)
    for path in ("totp", "signing-secret"):
        r = await client.post(f"/v1/keys/{key['id']}/{path}", headers=root_headers)
        assert r.status_code == 409, path
    r = await client.post(
        f"/v1/keys/{key['id']}/certificates", json={"pem": _pem("x")}, headers=root_headers
    )
    assert r.status_code == 409


async def test_restriction_endpoints_need_a_root_key_and_a_known_key(
    client, root_headers, project_id
):
    key = await create_key(client, root_headers, project_id)
    r = await client.post(f"/v1/keys/{key['id']}/signing-secret", headers=bearer(key["key"]))
    assert (r.status_code, r.json()["code"]) == (403, "root_key_required")
    r = await client.post("/v1/keys/aptr_live_0000000000000000/totp", headers=root_headers)
    assert r.status_code == 404


# ---- IP allowlists and allowed domains --------------------------------------------------


async def test_allowlist_entries_are_validated_and_normalised(
    client, root_headers, project_id, runtime
):
    key = await create_key(
        client,
        root_headers,
        project_id,
        ip_allowlist=["10.1.2.3", "10.0.0.0/8", "2001:DB8::/32", "10.1.2.3"],
        allowed_domains=["*.Example.COM", "https://app.example.org/"],
    )
    assert key["ip_allowlist"] == ["10.1.2.3/32", "10.0.0.0/8", "2001:db8::/32"]
    assert key["allowed_domains"] == ["*.example.com", "https://app.example.org"]
    r = await client.patch(
        f"/v1/keys/{key['id']}", json={"ip_allowlist": ["203.0.113.0/24"]}, headers=root_headers
    )
    assert r.json()["ip_allowlist"] == ["203.0.113.0/24"]
    assert "key.restrictions_changed" in await _audit_text(runtime)


async def test_the_audit_log_says_what_a_key_may_do_not_only_that_it_changed(
    client, root_headers, project_id, runtime
):
    key = await create_key(
        client,
        root_headers,
        project_id,
        ip_allowlist=["10.0.0.0/8"],
        allowed_domains=["app.example.com"],
        rate_limit={"limit": 10, "period_seconds": 60},
    )
    r = await client.patch(
        f"/v1/keys/{key['id']}",
        json={"ip_allowlist": ["10.0.0.0/8", "0.0.0.0/0"], "rate_limit": None},
        headers=root_headers,
    )
    assert r.status_code == 200, r.text
    async with runtime.sessions() as db:
        events = {
            e.action: e.data
            for e in (await db.execute(select(AuditEvent).where(AuditEvent.target == key["id"])))
            .scalars()
            .all()
        }
    created = events["key.created"]
    assert created["ip_allowlist"] == {"items": ["10.0.0.0/8"], "count": 1}
    assert created["allowed_domains"] == {"items": ["app.example.com"], "count": 1}
    assert created["rate_limit"] == {"limit": 10, "period_seconds": 60}
    changed = events["key.restrictions_changed"]
    assert changed["fields"] == ["ip_allowlist", "rate_limit"]
    assert changed["changes"] == {
        "ip_allowlist": {"added": ["0.0.0.0/0"], "removed": [], "count": 2},
        "rate_limit": {"from": {"limit": 10, "period_seconds": 60}, "to": None},
    }


@pytest.mark.parametrize(
    ("field", "entry"),
    [
        ("ip_allowlist", "10.0.0.0/33"),
        ("ip_allowlist", "fe80::1%eth0"),
        ("ip_allowlist", "10.0.0.1 "),
        ("ip_allowlist", "example.com"),
        ("allowed_domains", "*.com"),
        ("allowed_domains", "*"),
        ("allowed_domains", "https://example.com/path"),
        ("allowed_domains", "exa mple.com"),
        ("allowed_domains", "a.*.example.com"),
    ],
)
async def test_bad_allowlist_entries_are_422_naming_the_entry(
    client, root_headers, project_id, field, entry
):
    r = await client.post(
        f"/v1/projects/{project_id}/keys",
        json={
            "name": "bad",
            "environment": "live",
            field: ["10.0.0.0/8" if field == "ip_allowlist" else "ok.example", entry],
        },
        headers=root_headers,
    )
    assert (r.status_code, r.json()["code"]) == (422, "validation_failed")
    error = r.json()["errors"][0]
    assert error["loc"][-2:] == [field, "1"]
    assert repr(entry.strip())[1:-1][:20] in error["msg"] or entry.strip() in error["msg"]
    key = await create_key(client, root_headers, project_id)
    r = await client.patch(f"/v1/keys/{key['id']}", json={field: [entry]}, headers=root_headers)
    assert r.status_code == 422


async def test_rate_limit_headers_on_keyguards_own_route(client, root_headers, project_id):
    key = await create_key(
        client, root_headers, project_id, rate_limit={"limit": 2, "period_seconds": 60}
    )
    r = await client.post("/v1/sessions", json=POLL_SESSION, headers=bearer(key["key"]))
    assert (r.headers["ratelimit-limit"], r.headers["ratelimit-remaining"]) == ("2", "1")
    created = r.json()["id"]
    r = await client.get(f"/v1/sessions/{created}", headers=bearer(key["key"]))
    assert r.headers["ratelimit-remaining"] == "0"
    r = await client.get(f"/v1/sessions/{created}", headers=bearer(key["key"]))
    assert (r.status_code, r.json()["code"]) == (429, "rate_limited")
    assert int(r.headers["retry-after"]) >= 1
    assert isinstance(r, httpx.Response)


async def test_a_bare_public_id_with_a_wrong_signature_learns_nothing_and_leaves_no_trace(
    client, root_headers, project_id, clock, runtime
):
    """Issue 10, defect 3: the public id alone probed the key's restrictions (403
    ip_not_allowed before the signature was checked), and each probe wrote a check.failed
    row and counted as usage."""
    key = await create_key(client, root_headers, project_id, ip_allowlist=["10.0.0.0/8"])
    secret = (
        await client.post(f"/v1/keys/{key['id']}/signing-secret", headers=root_headers)
    ).json()["signing_secret"]
    forged = SignedRequestAuth(key["id"], "kgsig_" + "A" * 43, header_prefix="APTR", clock=clock)
    for _ in range(5):
        r = await client.post("/v1/sessions", json=POLL_SESSION, auth=forged)
        assert (r.status_code, r.json()["code"]) == (401, "signature_invalid")
    assert await runtime.refusals.flush() == 0  # no check.failed row
    await runtime.usage.flush()
    usage = await client.get(f"/v1/keys/{key['id']}/usage", headers=root_headers)
    assert usage.json()["totals"]["requests"] == 0
    # The real signature, from the wrong address: now the other checks speak (and count).
    genuine = SignedRequestAuth(key["id"], secret, header_prefix="APTR", clock=clock)
    r = await client.post("/v1/sessions", json=POLL_SESSION, auth=genuine)
    assert (r.status_code, r.json()["code"]) == (403, "ip_not_allowed")


async def test_a_signature_or_totp_code_is_spent_once_across_a_rotated_pair(
    client, root_headers, project_id, clock
):
    """Issue 10, defect 2: rotation copies the signing and TOTP secrets to the successor,
    while spent signatures and steps were remembered per key id: both could be used again
    with the other key of the pair."""
    key = await create_key(client, root_headers, project_id)
    signing = (
        await client.post(f"/v1/keys/{key['id']}/signing-secret", headers=root_headers)
    ).json()["signing_secret"]
    totp = pyotp.TOTP(
        (await client.post(f"/v1/keys/{key['id']}/totp", headers=root_headers)).json()["secret"]
    )
    await client.post(
        f"/v1/keys/{key['id']}/totp/confirm",
        json={"code": totp.at(clock.now())},
        headers=root_headers,
    )
    new = (
        await client.post(
            f"/v1/keys/{key['id']}/rotate", json={"grace_seconds": 3600}, headers=root_headers
        )
    ).json()
    body = json.dumps(POLL_SESSION).encode()
    ts = str(int(clock.now()))
    signature = compute_signature(signing, "POST", "/v1/sessions", body, ts)
    code = totp.at(clock.now() + 30)  # the confirmation spent the current step

    def signed(key_id: str) -> dict[str, str]:
        return {
            "X-API-Key": key_id,
            "X-APTR-Timestamp": ts,
            "X-APTR-Signature": signature,
            "X-APTR-TOTP": code,
            "Content-Type": "application/json",
        }

    first = await client.post("/v1/sessions", content=body, headers=signed(key["id"]))
    assert first.status_code == 201, first.text
    again = await client.post("/v1/sessions", content=body, headers=signed(new["id"]))
    assert (again.status_code, again.json()["code"]) == (401, "signature_replayed")
    # The TOTP code alone, with a fresh signature, on the successor: spent as well.
    ts2 = str(int(clock.now()) + 1)
    fresh = {
        **signed(new["id"]),
        "X-APTR-Timestamp": ts2,
        "X-APTR-Signature": compute_signature(signing, "POST", "/v1/sessions", body, ts2),
    }
    reused = await client.post("/v1/sessions", content=body, headers=fresh)
    assert (reused.status_code, reused.json()["code"]) == (401, "totp_invalid")


async def test_a_totp_lockout_by_a_key_thief_is_bounded_and_visible(
    client, root_headers, project_id, clock, runtime
):
    """Issue 10, defect 12 (a decision): wrong TOTP codes are throttled per key, so whoever
    holds a leaked key secret can keep its legitimate client waiting. Kept (a per-client
    throttle would let the thief guess from many addresses), but bounded — five wrong
    codes a minute, so the wait ends a minute after the thief stops — and visible: the
    refusals reach the audit log as check.failed, and a burst of them raises a key.anomaly
    event and email to the owners (docs/restrictions.md)."""
    key = await create_key(client, root_headers, project_id)
    secret = (await client.post(f"/v1/keys/{key['id']}/totp", headers=root_headers)).json()
    app = pyotp.TOTP(secret["secret"])
    await client.post(
        f"/v1/keys/{key['id']}/totp/confirm",
        json={"code": app.at(clock.now())},
        headers=root_headers,
    )
    window = {app.at(clock.now() + 30 * step) for step in (-1, 0, 1, 2)}
    wrong = next(c for c in ("000000", "111111", "222222", "333333") if c not in window)
    thief = {**bearer(key["key"]), "X-APTR-TOTP": wrong}
    codes = [
        (await client.post("/v1/sessions", json=POLL_SESSION, headers=thief)).json()["code"]
        for _ in range(25)
    ]
    assert codes[:5] == ["totp_invalid"] * 5
    assert set(codes[5:]) == {"rate_limited"}
    owner = {**bearer(key["key"]), "X-APTR-TOTP": app.at(clock.now() + 30)}
    locked = await client.post("/v1/sessions", json=POLL_SESSION, headers=owner)
    assert locked.json()["code"] == "rate_limited"
    assert 1 <= int(locked.headers["retry-after"]) <= 60
    # Visible: the audit log and an anomaly for the owners.
    await runtime.refusals.flush()
    await runtime.usage.flush()
    assert await check_counts(runtime) == 1
    async with runtime.sessions() as db:
        audited = (
            await db.execute(select(AuditEvent.action, AuditEvent.data).where(
                AuditEvent.target == key["id"]))
        ).all()  # fmt: skip
    assert {data["code"] for action, data in audited if action == "check.failed"} >= {
        "totp_invalid",
        "rate_limited",
    }
    assert ("key.anomaly", "failure_burst") in {
        (action, data.get("reason")) for action, data in audited
    }
    # Bounded: a minute after the thief stops, the owner's next code passes.
    clock.advance(61)
    owner = {**bearer(key["key"]), "X-APTR-TOTP": app.at(clock.now())}
    assert (await client.post("/v1/sessions", json=POLL_SESSION, headers=owner)).status_code == 201
