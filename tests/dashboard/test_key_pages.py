"""Settings > API Keys, in-process: seed 000's steps work as written, every change goes
through the services (validated, audited once, atomic), a secret is shown once, and a
role or a project that does not allow something is refused on the server."""

from __future__ import annotations

import re
import ssl
from datetime import UTC, datetime, timedelta

import httpx
import pyotp
from cryptography.hazmat.primitives import serialization
from sqlalchemy import func, select

from account_pages import NEW_PASSWORD, csrf_of, join, once_of, sign_in
from helpers import self_signed
from keyguard.audit.models import AuditEvent
from keyguard.crypto.request_signing import compute_signature
from keyguard.keys.models import ApiKey, KeyCertificate
from keyguard.runtime import Runtime
from keyguard.web.csrf import FIELD

KEY = re.compile(r'<code id="new-key">([^<]+)</code>')
TOTP_SECRET = re.compile(r'<code id="totp-secret">([A-Z2-7 ]+)</code>')


def keys_url(project_id: str) -> str:
    return f"/projects/{project_id}/settings/api-keys"


async def post(client: httpx.AsyncClient, page: str, action: str, **fields: str) -> httpx.Response:
    """GET ``page`` for its CSRF token, then POST ``fields`` to ``action``."""
    shown = await client.get(page)
    assert shown.status_code == 200, shown.text
    form = {FIELD: csrf_of(shown.text), **once_of(shown.text), **fields}
    return await client.post(action, data=form)


async def create(client: httpx.AsyncClient, project_id: str, **fields: str) -> tuple[str, str]:
    """Create a key on the page; (its id, the key shown once)."""
    page = keys_url(project_id)
    made = await post(client, page, page, **{"name": "Server", "environment": "live", **fields})
    assert made.status_code == 201, made.text
    found = KEY.search(made.text)
    assert found
    key_id = re.search(r"<code>(aptr_[a-z]+_[A-Za-z0-9]+)</code>", made.text)
    assert key_id
    return key_id.group(1), found.group(1)


def key_form(**fields: str) -> dict[str, str]:
    base = {
        "name": "Server",
        "scopes": "",
        "expires_at": "",
        "rate_limit": "",
        "rate_period": "60",
        "ip_allowlist": "",
        "allowed_domains": "",
    }
    return {**base, **fields}


async def audit_count(runtime: Runtime, target: str) -> int:
    async with runtime.sessions() as db:
        query = select(func.count()).select_from(AuditEvent).where(AuditEvent.target == target)
        return int((await db.execute(query)).scalar_one())


async def poll(client: httpx.AsyncClient, key: str, **headers: str) -> httpx.Response:
    return await client.post(
        "/v1/sessions",
        json={"delivery_mode": "poll"},
        headers={"Authorization": f"Bearer {key}", **headers},
    )


async def test_opening_the_project_leads_to_settings_api_keys(owner, project_id) -> None:
    home = await owner.get(f"/projects/{project_id}")
    assert home.status_code == 303
    assert home.headers["location"] == keys_url(project_id)
    page = await owner.get(keys_url(project_id))
    assert page.status_code == 200
    assert "<h1>API Keys</h1>" in page.text
    assert "No keys yet" in page.text  # the admin's root key is no project key
    projects = await owner.get("/projects")
    assert f'href="{keys_url(project_id)}"' in projects.text


async def test_a_new_key_is_shown_once_and_then_never_again(owner, project_id, runtime) -> None:
    key_id, key = await create(owner, project_id, scopes="sessions:write")
    assert key.startswith("aptr_live_")
    for url in (keys_url(project_id), f"{keys_url(project_id)}/{key_id}"):
        page = await owner.get(url)
        assert page.status_code == 200
        assert key not in page.text
        assert key.split("_")[-1][-12:] not in page.text  # not even the secret's tail
        assert key_id in page.text
    before = await owner.get(keys_url(project_id))
    assert "Not yet" in before.text  # never used
    assert (await poll(owner, key)).status_code == 201
    await runtime.usage.flush()
    listed = await owner.get(keys_url(project_id))
    assert '<span class="meta">203.0.113.7</span>' in listed.text  # last used, from where
    async with runtime.sessions() as db:
        row = (await db.execute(select(ApiKey).where(ApiKey.id == key_id))).scalar_one()
    assert row.scopes == ["sessions:write"]


async def test_created_page_is_never_cached(owner, project_id) -> None:
    page = keys_url(project_id)
    made = await post(owner, page, page, name="Cache", environment="test")
    assert made.status_code == 201
    assert made.headers["cache-control"] == "no-store"
    assert "aptr_test_" in made.text


async def test_ip_allowlist_as_in_the_seed_then_another_address_gets_403(
    owner, project_id, runtime, client
) -> None:
    key_id, key = await create(owner, project_id)
    url = f"{keys_url(project_id)}/{key_id}"
    before = await audit_count(runtime, key_id)
    # A typo on line 2: refused next to the field, with its line; nothing saved.
    bad = await post(owner, url, url, **key_form(ip_allowlist="203.0.113.7\n10.0.0.0/33"))
    assert bad.status_code == 422
    assert "Line 2:" in bad.text
    assert 'aria-invalid="true"' in bad.text
    assert "10.0.0.0/33" in bad.text  # what was typed is kept
    assert await audit_count(runtime, key_id) == before
    # The test client connects from 203.0.113.7.
    saved = await post(owner, url, url, **key_form(ip_allowlist="198.51.100.0/24\n2001:db8::/32"))
    assert saved.status_code == 303
    assert saved.headers["location"] == f"{url}?flash=key_saved"
    assert await audit_count(runtime, key_id) == before + 1
    refused = await poll(owner, key)
    assert refused.status_code == 403
    assert refused.json()["code"] == "ip_not_allowed"
    opened = await post(owner, url, url, **key_form(ip_allowlist="203.0.113.0/24"))
    assert opened.status_code == 303
    assert (await poll(owner, key)).status_code == 201


async def test_saving_an_untouched_form_changes_and_audits_nothing(
    owner, project_id, runtime
) -> None:
    key_id, _ = await create(owner, project_id, scopes="a\nb", rate_limit="100")
    url = f"{keys_url(project_id)}/{key_id}"
    before = await audit_count(runtime, key_id)
    untouched = await post(owner, url, url, **key_form(scopes="a, b", rate_limit="100"))
    assert untouched.headers["location"] == f"{url}?flash=key_unchanged"
    assert await audit_count(runtime, key_id) == before
    changed = await post(owner, url, url, **key_form(scopes="a", rate_limit="100"))
    assert changed.headers["location"] == f"{url}?flash=key_saved"
    assert await audit_count(runtime, key_id) == before + 1


async def test_allowed_domains_with_the_wildcard_rule(owner, project_id) -> None:
    key_id, key = await create(owner, project_id)
    url = f"{keys_url(project_id)}/{key_id}"
    page = await owner.get(url)
    assert "any depth" in page.text  # the wildcard rule, beside the field
    bad = await post(owner, url, url, **key_form(allowed_domains="*"))
    assert bad.status_code == 422
    assert "Line 1:" in bad.text
    ok = await post(owner, url, url, **key_form(allowed_domains="*.example.com"))
    assert ok.status_code == 303
    deep = await poll(owner, key, Origin="https://a.b.example.com")
    assert deep.status_code == 201
    apex = await poll(owner, key, Origin="https://example.com")
    assert apex.status_code == 403
    assert apex.json()["code"] == "origin_not_allowed"


async def test_enable_totp_then_requests_need_a_code(owner, project_id, clock) -> None:
    key_id, key = await create(owner, project_id)
    url = f"{keys_url(project_id)}/{key_id}"
    started = await post(owner, url, f"{url}/totp/start")
    assert started.status_code == 200
    found = TOTP_SECRET.search(started.text)
    assert found
    secret = found.group(1).replace(" ", "")
    assert "<svg" in started.text  # the QR code
    token = csrf_of(started.text)
    wrong = await owner.post(f"{url}/totp/confirm", data={FIELD: token, "code": "000000"})
    assert wrong.status_code == 422
    assert secret not in wrong.text  # not shown a second time
    code = pyotp.TOTP(secret).at(clock.now())
    confirmed = await owner.post(f"{url}/totp/confirm", data={FIELD: token, "code": code})
    assert confirmed.headers["location"] == f"{url}?flash=totp_enabled"
    page = await owner.get(url)
    assert secret not in page.text
    assert "X-APTR-TOTP" in page.text  # this server's header prefix
    assert (await poll(owner, key)).json()["code"] == "totp_required"
    clock.advance(30)
    fresh = pyotp.TOTP(secret).at(clock.now())
    assert (await poll(owner, key, **{"X-APTR-TOTP": fresh})).status_code == 201


async def test_revoke_is_behind_a_confirmation_and_refused_next_request(owner, project_id) -> None:
    key_id, key = await create(owner, project_id)
    url = f"{keys_url(project_id)}/{key_id}"
    confirm = await owner.get(f"{url}/revoke")
    assert confirm.status_code == 200
    assert "final" in confirm.text
    assert (await poll(owner, key)).status_code == 201  # a GET changed nothing
    form = {FIELD: csrf_of(confirm.text), **once_of(confirm.text)}
    revoked = await owner.post(f"{url}/revoke", data=form)
    again = await owner.post(f"{url}/revoke", data=form)  # reloaded: already sent
    assert again.status_code == 409
    assert "already sent" in again.text
    assert revoked.headers["location"] == f"{url}?flash=key_revoked"
    refused = await poll(owner, key)
    assert refused.status_code == 401
    assert refused.json()["code"] == "key_revoked"


async def test_rotation_with_a_grace_period_keeps_both_keys_working(owner, project_id) -> None:
    key_id, old = await create(owner, project_id)
    url = f"{keys_url(project_id)}/{key_id}"
    rotated = await post(owner, f"{url}/rotate", f"{url}/rotate", grace="3600")
    assert rotated.status_code == 201
    found = KEY.search(rotated.text)
    assert found
    new = found.group(1)
    assert new != old
    assert (await poll(owner, old)).status_code == 201
    assert (await poll(owner, new)).status_code == 201


async def test_without_a_csrf_token_nothing_is_created(owner, project_id, runtime) -> None:
    async with runtime.sessions() as db:
        before = (await db.execute(select(func.count()).select_from(ApiKey))).scalar_one()
    refused = await owner.post(keys_url(project_id), data={"name": "x", "environment": "live"})
    assert refused.status_code == 403
    async with runtime.sessions() as db:
        after = (await db.execute(select(func.count()).select_from(ApiKey))).scalar_one()
    assert after == before


async def test_a_viewer_sees_keys_but_cannot_change_anything(
    owner, runtime, browser, project_id
) -> None:
    key_id, key = await create(owner, project_id)
    url = f"{keys_url(project_id)}/{key_id}"
    await join(runtime, browser, project_id, owner, "viewer@example.com", "viewer")
    async with browser() as viewer:
        assert (await sign_in(viewer, "viewer@example.com", NEW_PASSWORD)).status_code == 303
        listing = await viewer.get(keys_url(project_id))
        assert listing.status_code == 200
        assert key_id in listing.text
        assert "Create key" not in listing.text
        page = await viewer.get(url)
        assert page.status_code == 200
        assert "does not let you change it" in page.text
        assert ">Save<" not in page.text
        token = csrf_of(page.text)
        attempts = [
            (keys_url(project_id), {"name": "mine", "environment": "live"}),
            (url, key_form(ip_allowlist="0.0.0.0/0")),
            (f"{url}/revoke", {}),
            (f"{url}/rotate", {"grace": "0"}),
            (f"{url}/regenerate", {}),
            (f"{url}/totp/start", {}),
        ]
        for action, fields in attempts:
            refused = await viewer.post(action, data={FIELD: token, **fields})
            assert refused.status_code == 403, action
        assert (await viewer.get(f"{url}/revoke")).status_code == 403
    assert (await poll(owner, key)).status_code == 201
    async with runtime.sessions() as db:
        row = (await db.execute(select(ApiKey).where(ApiKey.id == key_id))).scalar_one()
    assert row.ip_allowlist == []
    assert row.revoked_at is None


async def test_another_projects_key_and_project_do_not_exist(
    owner, runtime, browser, project_id, root_headers
) -> None:
    made = await owner.post("/v1/projects", json={"name": "Private"}, headers=root_headers)
    private = made.json()["id"]
    other = await owner.post(
        f"/v1/projects/{private}/keys",
        json={"name": "theirs", "environment": "live"},
        headers=root_headers,
    )
    other_id = other.json()["id"]
    # A key of another project, reached through this project's pages: as if it did not exist.
    assert (await owner.get(f"{keys_url(project_id)}/{other_id}")).status_code == 404
    page = await owner.get(keys_url(project_id))
    shown = await owner.post(
        f"{keys_url(project_id)}/{other_id}/revoke", data={FIELD: csrf_of(page.text)}
    )
    assert shown.status_code == 404
    await join(runtime, browser, project_id, owner, "dev@example.com", "developer")
    async with browser() as dev:
        assert (await sign_in(dev, "dev@example.com", NEW_PASSWORD)).status_code == 303
        assert (await dev.get(keys_url(private))).status_code == 404
        assert (await dev.get(f"/projects/{private}")).status_code == 404
    async with runtime.sessions() as db:
        row = (await db.execute(select(ApiKey).where(ApiKey.id == other_id))).scalar_one()
    assert row.revoked_at is None


async def test_signed_out_people_are_sent_to_sign_in(client, admin, project_id) -> None:
    page = await client.get(keys_url(project_id))
    assert page.status_code == 303
    assert page.headers["location"].startswith("/login?next=")


def _pem(cn: str) -> str:
    now = datetime.now(UTC)
    cert, _ = self_signed(cn, now - timedelta(days=1), now + timedelta(days=30))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


async def test_client_certificates_uploaded_or_pasted_then_required(
    owner, project_id, runtime
) -> None:
    key_id, key = await create(owner, project_id)
    url = f"{keys_url(project_id)}/{key_id}"
    page = await owner.get(url)
    token = csrf_of(page.text)
    # Not a certificate: refused next to the field, nothing registered.
    bad = await owner.post(f"{url}/certificates", data={FIELD: token, "certificate": "hello"})
    assert bad.status_code == 422
    assert 'id="e-certificate"' in bad.text
    nothing = await owner.post(f"{url}/certificates", data={FIELD: token})
    assert nothing.status_code == 422
    assert "Choose a PEM file" in nothing.text
    der = ssl.PEM_cert_to_DER_cert(_pem("binary"))
    for unreadable in (der, b"   \n"):
        refused = await owner.post(
            f"{url}/certificates",
            data={FIELD: token},
            files={"certificate_file": ("client.cer", unreadable, "application/octet-stream")},
        )
        assert refused.status_code == 422
        assert "is not a PEM certificate" in refused.text
    # Upload a file (the seed: "Upload the certificate to your API key settings").
    uploaded = await owner.post(
        f"{url}/certificates",
        data={FIELD: token},
        files={"certificate_file": ("client.pem", _pem("uploaded-client").encode(), "text/plain")},
    )
    assert uploaded.status_code == 303, uploaded.text
    pasted = await owner.post(
        f"{url}/certificates", data={FIELD: token, "certificate": _pem("pasted-client")}
    )
    assert pasted.status_code == 303
    shown = await owner.get(url)
    assert "CN=uploaded-client" in shown.text
    assert "CN=pasted-client" in shown.text
    refused = await poll(owner, key)
    assert refused.json()["code"] == "client_certificate_required"
    async with runtime.sessions() as db:
        rows = await db.execute(select(KeyCertificate).where(KeyCertificate.key_id == key_id))
        fingerprints = [row.fingerprint_sha256 for row in rows.scalars()]
    assert len(fingerprints) == 2
    for fingerprint in fingerprints:
        gone = await owner.post(f"{url}/certificates/{fingerprint}/remove", data={FIELD: token})
        assert gone.status_code == 303
    assert (await poll(owner, key)).status_code == 201


async def test_a_signing_secret_is_shown_once_and_then_required(owner, project_id, clock) -> None:
    key_id, key = await create(owner, project_id)
    url = f"{keys_url(project_id)}/{key_id}"
    made = await post(owner, url, f"{url}/signing")
    assert made.status_code == 201
    found = re.search(r'<code id="signing-secret">([^<]+)</code>', made.text)
    assert found
    secret = found.group(1)
    assert "X-APTR-Signature" in made.text
    assert secret not in (await owner.get(url)).text
    assert (await poll(owner, key)).json()["code"] == "signature_invalid"
    body = b'{"delivery_mode":"poll"}'
    ts = str(int(clock.now()))
    signed = await owner.post(
        "/v1/sessions",
        content=body,
        headers={
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "X-APTR-Timestamp": ts,
            "X-APTR-Signature": compute_signature(secret, "POST", "/v1/sessions", body, ts),
        },
    )
    assert signed.status_code == 201, signed.text
    off = await post(owner, url, f"{url}/signing/remove")
    assert off.status_code == 303
    assert (await poll(owner, key)).status_code == 201


async def test_refusals_are_in_the_pages_language(owner, project_id) -> None:
    key_id, _ = await create(owner, project_id)
    url = f"{keys_url(project_id)}/{key_id}"
    page = await owner.get(url, headers={"Accept-Language": "fr-CA"})
    refused = await owner.post(
        url,
        data={
            FIELD: csrf_of(page.text),
            **once_of(page.text),
            **key_form(ip_allowlist="10.0.0.1\n300.1.1.1"),
        },
        headers={"Accept-Language": "fr-CA"},
    )
    assert refused.status_code == 422
    assert "Ligne 2" in refused.text
    assert "« 300.1.1.1 » n\u2019est pas une adresse IPv4 ou IPv6" in refused.text
    assert "is not an IP address" not in refused.text  # the schema's English sentence
    english = await post(owner, url, url, **key_form(ip_allowlist="300.1.1.1"))
    assert "Line 1: “300.1.1.1” is not an IPv4 or IPv6 address or CIDR range." in english.text


async def test_saving_keeps_an_exact_expiry_the_form_shows_as_a_day(
    owner, project_id, runtime, root_headers
) -> None:
    made = await owner.post(
        f"/v1/projects/{project_id}/keys",
        json={"name": "api-made", "environment": "live", "expires_at": "2031-06-02T14:33:12Z"},
        headers=root_headers,
    )
    key_id = made.json()["id"]
    url = f"{keys_url(project_id)}/{key_id}"
    saved = await post(owner, url, url, **key_form(name="renamed", expires_at="2031-06-02"))
    assert saved.headers["location"].endswith("flash=key_saved")
    async with runtime.sessions() as db:
        row = (await db.execute(select(ApiKey).where(ApiKey.id == key_id))).scalar_one()
    assert row.name == "renamed"
    assert row.expires_at.replace(tzinfo=UTC) == datetime(2031, 6, 2, 14, 33, 12, tzinfo=UTC)


async def test_a_rotated_key_in_its_grace_period_can_still_be_restricted(owner, project_id) -> None:
    key_id, old = await create(owner, project_id)
    url = f"{keys_url(project_id)}/{key_id}"
    await post(owner, f"{url}/rotate", f"{url}/rotate", grace="3600")
    page = await owner.get(url)
    typed_day = re.search(r'name="expires_at" type="date" value="([0-9-]+)"', page.text)
    assert typed_day
    saved = await post(
        owner, url, url, **key_form(ip_allowlist="198.51.100.0/24", expires_at=typed_day.group(1))
    )
    assert saved.status_code == 303, saved.text
    assert (await poll(owner, old)).json()["code"] == "ip_not_allowed"


async def test_the_list_pages_and_searches_every_key(owner, project_id, runtime) -> None:
    from keyguard.keys import service as keys_service

    for i in range(55):
        await keys_service.create_key(
            runtime, project_id, keys_service.KeySpec(name=f"bulk {i:02d}"), actor="t"
        )
    first = await owner.get(keys_url(project_id))
    assert first.text.count('<code class="meta">') == 50
    more = re.search(r'href="([^"]*after=[^"]+)"', first.text)
    assert more
    rest = await owner.get(more.group(1).replace("&amp;", "&"))
    assert rest.text.count('<code class="meta">') == 5
    found = await owner.get(keys_url(project_id) + "?q=bulk+54")
    assert "bulk 54" in found.text
    assert found.text.count('<code class="meta">') == 1
    assert (await owner.get(keys_url(project_id) + "?after=garbage")).status_code == 400
