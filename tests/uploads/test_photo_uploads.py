"""Upload sessions end to end: the page, the upload, its checks, poll and webhook modes."""

from __future__ import annotations

import hashlib
import hmac
import io
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from standardwebhooks import Webhook

from keyguard.accounts.service import InitResult
from keyguard.clock import FrozenClock
from keyguard.errors import ValidationFailed
from keyguard.runtime import Runtime
from keyguard.uploads import photos
from keyguard.uploads import routes as upload_routes
from keyguard.uploads.models import UploadSession
from keyguard.webhooks.worker import DeliveryWorker
from webhook_helpers import PNG, Receiver, project_key

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
PASSWORD = "claim-4521-pin"


# The seed's Python verifier, copied verbatim (000 Apertur, "Webhook Signature
# Verification"); its two imports are at the top of this module.


def verify_webhook(body: bytes, signature: str, secret: str) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


async def _session(client: httpx.AsyncClient, key: str, **body: Any) -> dict[str, Any]:
    r = await client.post("/v1/sessions", json=body, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 201, r.text
    return r.json()


def _file(data: bytes = PNG, name: str = "photo.png") -> dict[str, Any]:
    return {"file": (name, io.BytesIO(data), "image/png")}


async def _upload(
    client: httpx.AsyncClient,
    session_id: str,
    content: bytes = PNG,
    name: str = "a.png",
    **kw: Any,
) -> httpx.Response:
    return await client.post(f"/v1/sessions/{session_id}/photos", files=_file(content, name), **kw)


async def test_the_seed_flow_uploads_and_delivers_a_signed_photo_webhook(
    client: httpx.AsyncClient,
    runtime: Runtime,
    admin: InitResult,
    root_headers: dict[str, str],
    project_id: str,
    receiver: Receiver,
    worker: DeliveryWorker,
) -> None:
    key = await project_key(client, root_headers, project_id)
    session = await _session(
        client, key, delivery_mode="webhook", webhook_url=receiver.url("/webhook"),
        password=PASSWORD,
    )  # fmt: skip
    page = await client.get(session["upload_url"].replace("https://testserver", ""))
    assert page.status_code == 200
    assert f'action="/v1/sessions/{session["id"]}/photos"' in page.text
    assert "name=password type=password" in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]

    r = await _upload(client, session["id"], JPEG, "holiday.jpg", data={"password": PASSWORD})
    assert r.status_code == 201, r.text
    photo = r.json()
    assert (photo["content_type"], photo["size"], photo["filename"]) == (
        "image/jpeg",
        len(JPEG),
        "holiday.jpg",
    )
    assert await worker.run_once() == 1
    [seen] = receiver.seen("/webhook")
    secret = admin.project.webhook_secret
    assert verify_webhook(seen.body, seen.headers["x-aptr-signature"], secret)
    Webhook(secret).verify(seen.body, seen.headers)
    event = seen.json()
    assert event["type"] == "photo.uploaded"
    assert event["data"]["session_id"] == session["id"]
    assert event["data"]["photo"]["id"] == photo["id"]
    assert event["data"]["photo"]["sha256"] == hashlib.sha256(JPEG).hexdigest()
    assert PASSWORD not in seen.body.decode()
    link = event["data"]["download_url"].replace("https://testserver", "")
    got = await client.get(link)
    assert (got.status_code, got.content) == (200, JPEG)
    assert got.headers["content-type"] == "image/jpeg"
    assert got.headers["x-content-type-options"] == "nosniff"


async def test_the_password_may_come_in_the_header(
    client: httpx.AsyncClient, root_headers: dict[str, str], project_id: str
) -> None:
    key = await project_key(client, root_headers, project_id)
    session = await _session(client, key, delivery_mode="poll", password=PASSWORD)
    r = await _upload(client, session["id"], headers={"X-APTR-Session-Password": PASSWORD})
    assert r.status_code == 201


async def test_wrong_or_missing_passwords_are_refused_then_throttled(
    client: httpx.AsyncClient, root_headers: dict[str, str], project_id: str
) -> None:
    key = await project_key(client, root_headers, project_id)
    session = await _session(client, key, delivery_mode="poll", password=PASSWORD)
    missing = await _upload(client, session["id"])
    assert (missing.status_code, missing.json()["code"]) == (401, "session_password_invalid")
    wrong = await _upload(client, session["id"], data={"password": "guess"})
    assert (wrong.status_code, wrong.json()["code"]) == (401, "session_password_invalid")
    assert "guess" not in wrong.text
    codes = []
    for _ in range(10):
        r = await _upload(client, session["id"], headers={"X-APTR-Session-Password": "guess"})
        codes.append(r.status_code)
    assert codes[-1] == 429
    assert r.json()["code"] == "rate_limited"
    assert int(r.headers["retry-after"]) >= 1
    # Throttled means not even the right password is checked until the window passes.
    right = await _upload(client, session["id"], data={"password": PASSWORD})
    assert right.status_code == 429


async def test_right_passwords_never_run_into_the_throttle(
    client: httpx.AsyncClient,
    root_headers: dict[str, str],
    project_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Tiny budgets stand in for the real ones (bcrypt makes each check slow on purpose).
    monkeypatch.setattr(photos, "IP_ATTEMPTS", (2, 600))
    monkeypatch.setattr(photos, "SESSION_ATTEMPTS", (2, 300))
    key = await project_key(client, root_headers, project_id)
    session = await _session(client, key, delivery_mode="poll", password=PASSWORD)
    right = {"X-APTR-Session-Password": PASSWORD}
    for _ in range(4):  # twice the budget, all from the one test client address
        assert (await _upload(client, session["id"], headers=right)).status_code == 201
    wrong = {"X-APTR-Session-Password": "guess"}
    codes = [(await _upload(client, session["id"], headers=wrong)).status_code for _ in range(3)]
    assert codes == [401, 401, 429]
    assert (await _upload(client, session["id"], headers=right)).status_code == 429


HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def _is_page(r: httpx.Response, status: int, text: str) -> bool:
    return (
        r.status_code == status
        and r.headers["content-type"].startswith("text/html")
        and text in r.text
        and "frame-ancestors 'none'" in r.headers["content-security-policy"]
    )


async def test_a_browser_gets_refusals_as_pages_with_the_same_status_and_headers(
    client: httpx.AsyncClient,
    runtime: Runtime,
    root_headers: dict[str, str],
    project_id: str,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(photos, "SESSION_ATTEMPTS", (1, 300))
    key = await project_key(client, root_headers, project_id)
    locked = (await _session(client, key, delivery_mode="poll", password=PASSWORD))["id"]
    wrong = await _upload(client, locked, data={"password": "guess"}, headers=HTML)
    assert _is_page(wrong, 401, "The session password is missing or wrong"), wrong.text
    assert wrong.headers["www-authenticate"].startswith("Bearer")
    assert f'href="/upload/{locked}"' in wrong.text
    throttled = await _upload(client, locked, data={"password": PASSWORD}, headers=HTML)
    assert _is_page(throttled, 429, "Too many password attempts"), throttled.text
    assert int(throttled.headers["retry-after"]) >= 1
    api = await _upload(client, locked, data={"password": PASSWORD})
    assert (api.status_code, api.headers["content-type"]) == (429, "application/problem+json")

    sid = (await _session(client, key, delivery_mode="poll"))["id"]
    not_image = await _upload(client, sid, b"%PDF-1.7", "cv.png", headers=HTML)
    assert _is_page(not_image, 415, "The file is not a JPEG, PNG, GIF, WebP or HEIC image")
    runtime.settings = runtime.settings.model_copy(update={"max_upload_bytes": 1000})
    big = await _upload(client, sid, PNG + b"\x00" * 2000, headers=HTML)
    assert _is_page(big, 413, "a photo may be at most 1000 bytes"), big.text
    async with runtime.transaction() as db:
        await db.execute(update(UploadSession).where(UploadSession.id == sid).values(max_photos=1))
    assert (await _upload(client, sid, headers=HTML)).status_code == 201
    full = await _upload(client, sid, headers=HTML)
    assert _is_page(full, 409, "this session accepts at most 1 photos"), full.text
    unknown = await _upload(client, "sess_doesnotexist00", headers=HTML)
    assert _is_page(unknown, 404, "This upload link does not exist.")
    clock.advance(86_400 + 1)
    expired = await _upload(client, sid, headers=HTML)
    assert _is_page(expired, 410, "This upload link has expired.")


def test_error_pages_escape_what_they_show() -> None:
    page = upload_routes._error_page(ValidationFailed("<script>x</script>"), 'sess_"><b>')
    body = bytes(page.body).decode()
    assert "<script>" not in body
    assert "<b>" not in body
    assert "&lt;script&gt;x&lt;/script&gt;" in body
    assert page.status_code == 422


async def test_upload_bad_inputs_are_refused_with_their_codes(
    client: httpx.AsyncClient,
    runtime: Runtime,
    root_headers: dict[str, str],
    project_id: str,
    clock: FrozenClock,
) -> None:
    key = await project_key(client, root_headers, project_id)
    session = await _session(client, key, delivery_mode="poll")
    sid = session["id"]

    not_image = await _upload(client, sid, b"%PDF-1.7 not an image at all", "cv.png")
    assert (not_image.status_code, not_image.json()["code"]) == (415, "unsupported_image_type")
    empty = await _upload(client, sid, b"", "empty.png")
    assert empty.status_code == 415
    no_file = await client.post(
        f"/v1/sessions/{sid}/photos", files={"other": ("a.png", io.BytesIO(PNG), "image/png")}
    )
    assert (no_file.status_code, no_file.json()["code"]) == (422, "validation_failed")
    as_json = await client.post(f"/v1/sessions/{sid}/photos", json={"file": "x"})
    assert as_json.status_code == 415
    unknown = await _upload(client, "sess_doesnotexist00")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "not_found")

    runtime.settings = runtime.settings.model_copy(update={"max_upload_bytes": 1000})
    big = await _upload(client, sid, PNG + b"\x00" * 2000)
    assert (big.status_code, big.json()["code"]) == (413, "payload_too_large")

    traversal = await _upload(client, sid, PNG, "../../etc/passwd")
    assert traversal.status_code == 201
    assert traversal.json()["filename"] == "passwd"
    stored = list((runtime.settings.data_dir / "photos").rglob("*"))
    assert all(p.resolve().is_relative_to(runtime.settings.data_dir.resolve()) for p in stored)
    assert not any("passwd" in p.name for p in stored)
    windows = await _upload(client, sid, PNG, "C:\\Users\\me\\..\\evil\u202egnp.exe")
    assert windows.json()["filename"] == "evilgnp.exe"

    clock.advance(86_400 + 1)
    expired = await _upload(client, sid)
    assert (expired.status_code, expired.json()["code"]) == (410, "session_expired")
    page = await client.get(f"/upload/{sid}")
    assert page.status_code == 410


async def test_a_session_accepts_at_most_max_photos(
    client: httpx.AsyncClient, root_headers: dict[str, str], project_id: str
) -> None:
    key = await project_key(client, root_headers, project_id)
    session = await _session(client, key, delivery_mode="poll")
    for _ in range(20):
        assert (await _upload(client, session["id"])).status_code == 201
    extra = await _upload(client, session["id"])
    assert (extra.status_code, extra.json()["code"]) == (409, "photo_limit_reached")


async def test_poll_mode_lists_photos_with_working_download_links(
    client: httpx.AsyncClient,
    root_headers: dict[str, str],
    project_id: str,
    clock: FrozenClock,
) -> None:
    key = await project_key(client, root_headers, project_id)
    session = await _session(client, key, delivery_mode="poll")
    await _upload(client, session["id"], PNG, "one.png")
    listed = await client.get(
        f"/v1/sessions/{session['id']}/photos", headers={"Authorization": f"Bearer {key}"}
    )
    assert listed.status_code == 200
    [photo] = listed.json()["data"]
    assert photo["filename"] == "one.png"
    link = photo["download_url"].replace("https://testserver", "")
    assert (await client.get(link)).content == PNG
    last = photo["id"][-1]
    tampered = link.replace(photo["id"], photo["id"][:-1] + ("y" if last == "x" else "x"))
    assert tampered != link
    r = await client.get(tampered)
    assert (r.status_code, r.json()["code"]) == (403, "download_link_invalid")
    clock.advance(3601)
    late = await client.get(link)
    assert (late.status_code, late.json()["code"]) == (403, "download_link_expired")
    anonymous = await client.get(f"/v1/sessions/{session['id']}/photos")
    assert anonymous.status_code == 401


@pytest.mark.parametrize("accept", ["text/html,application/xhtml+xml"])
async def test_a_browser_posting_the_form_gets_a_page_back(
    client: httpx.AsyncClient, root_headers: dict[str, str], project_id: str, accept: str
) -> None:
    key = await project_key(client, root_headers, project_id)
    session = await _session(client, key, delivery_mode="poll")
    r = await _upload(client, session["id"], headers={"Accept": accept})
    assert r.status_code == 201
    assert r.headers["content-type"].startswith("text/html")
    assert "Photo uploaded" in r.text


async def test_a_hostile_host_header_never_reaches_handed_out_urls(
    client: httpx.AsyncClient,
    root_headers: dict[str, str],
    project_id: str,
    runtime: Runtime,
) -> None:
    """An anonymous uploader controls Host; signed webhooks must not carry it."""
    from webhook_helpers import messages

    key = await project_key(client, root_headers, project_id)
    hostile = {"Host": "attacker.example"}
    created = await client.post(
        "/v1/sessions",
        json={"delivery_mode": "webhook", "webhook_url": "https://hooks.example.com/in"},
        headers={"Authorization": f"Bearer {key}"} | hostile,
    )
    assert created.status_code == 201, created.text
    assert "attacker.example" not in created.text
    base = runtime.settings.public_base_url
    assert created.json()["upload_url"].startswith(base + "/upload/")
    uploaded = await _upload(client, created.json()["id"], headers=hostile)
    assert uploaded.status_code == 201, uploaded.text
    payloads = [m.payload for m in await messages(runtime) if m.event_type == "photo.uploaded"]
    assert payloads
    assert all("attacker.example" not in p for p in payloads)
    assert all(base + "/v1/photos/" in p for p in payloads)
