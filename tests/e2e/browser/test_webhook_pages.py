"""The Webhooks room in a real browser against a real `keyguard serve`: open the project's
Webhooks, see the empty state, have a refused URL explained next to its field, add an
endpoint, rotate the signing secret (shown once, with a copy button), and see the
delivery log fill with a real delivery and its attempt. Every page photographed at both
widths."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from keyguard_browser import Certificates, KeyguardServer, Visit, start_keyguard
from playwright.sync_api import expect
from test_account_pages import sign_in

pytestmark = pytest.mark.e2e


class _Hook(BaseHTTPRequestHandler):
    """A receiver on 127.0.0.1 answering with a little HTML, as some receivers do."""

    received: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        self.received.append(self.rfile.read(int(self.headers.get("content-length", "0"))))
        body = b"<b>thanks</b> from the receiver"
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def hook() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def keyguard(
    tmp_path_factory: pytest.TempPathFactory, certificates: Certificates
) -> Iterator[KeyguardServer]:
    """The module's server, in local-development mode: loopback receivers over http."""
    root: Path = tmp_path_factory.mktemp("keyguard")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("KEYGUARD_WEBHOOK_ALLOW_PRIVATE", "127.0.0.0/8")
        with start_keyguard(root, certificates) as server:
            env.delenv("KEYGUARD_WEBHOOK_ALLOW_PRIVATE")
            yield server


def test_add_an_endpoint_rotate_the_secret_and_read_the_delivery_log(
    keyguard: KeyguardServer, visit: Visit, hook: str
) -> None:
    page = visit.page
    sign_in(visit, keyguard.email, keyguard.password)
    visit.shot("signed-in")
    visit.submit(page.get_by_role("link", name="Projects"))
    visit.shot("projects")
    visit.submit(page.get_by_role("link", name=re.compile("API keys of")))
    visit.shot("api-keys")

    # The project's Webhooks room, from the project's navigation.
    visit.submit(
        page.get_by_role("navigation", name="Settings").get_by_role("link", name="Webhooks")
    )
    expect(page.get_by_role("heading", name="Webhooks", exact=True)).to_be_visible()
    expect(page.get_by_text("No endpoints yet.")).to_be_visible()
    visit.shot("webhooks-empty")

    # A private address: the service's refusal, next to the URL field.
    page.get_by_label("URL", exact=True).fill("https://10.0.0.1/hook")
    page.get_by_label("Every event").check()
    visit.submit(page.get_by_role("button", name="Add endpoint"))
    expect(page.locator("#e-url")).to_contain_text("private")
    visit.shot("webhooks-refused-url")

    # Add the endpoint for real: key events only.
    page.get_by_label("URL", exact=True).fill(hook)
    page.get_by_label("Every event").uncheck()
    page.get_by_label("key.created").check()
    page.get_by_label("key.revoked").check()
    page.get_by_label("Description").fill("Billing server")
    visit.submit(page.get_by_role("button", name="Add endpoint"))
    expect(page.get_by_role("status")).to_contain_text("Endpoint added")
    expect(page.get_by_role("heading", name="Billing server")).to_be_visible()
    visit.shot("endpoint-added")

    # Rotate the signing secret: shown once, with a copy button.
    visit.submit(page.get_by_role("link", name="Webhooks", exact=True).first)
    visit.shot("webhooks-one")
    visit.submit(page.get_by_role("link", name="Rotate the signing secret"))
    visit.shot("rotate-secret")
    page.get_by_label("Overlap").select_option("3600")
    visit.submit(page.get_by_role("button", name="Rotate secret"))
    expect(page.get_by_role("alert")).to_contain_text("shown only once")
    secret = page.locator("#webhook-secret").inner_text().strip()
    assert secret.startswith("whsec_")
    expect(page.get_by_role("button", name="Copy")).to_be_visible()
    visit.shot("secret-rotated")
    visit.submit(page.get_by_role("link", name="Back to webhooks"))
    assert secret not in page.content()
    visit.shot("webhooks-after-rotation")

    # An event: a key created on Settings > API Keys is delivered to the endpoint.
    visit.submit(page.get_by_role("link", name="API Keys", exact=True))
    visit.shot("api-keys-before-event")
    page.get_by_label("Name", exact=True).fill("Backend")
    visit.submit(page.get_by_role("button", name="Create key"))
    visit.shot("key-created")
    visit.submit(page.get_by_role("link", name="I have copied it: open the key's settings"))
    visit.shot("key")
    deadline = time.monotonic() + 30
    while not _Hook.received and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _Hook.received, "no delivery reached the receiver"
    time.sleep(0.5)  # the attempt is recorded once the answer is read
    visit.submit(
        page.get_by_role("navigation", name="Settings").get_by_role("link", name="Webhooks")
    )
    log = page.locator("table.deliveries")
    expect(log).to_contain_text("key.created")
    expect(log).to_contain_text("Succeeded")
    visit.shot("webhooks-log")

    # The endpoint's log: each attempt, the receiver's answer shown as text.
    visit.submit(page.get_by_role("link", name=hook).first)
    page.locator("details summary").first.click()
    expect(page.locator("pre.excerpt").first).to_have_text("<b>thanks</b> from the receiver")
    visit.shot("endpoint-log")
    visit.submit(page.get_by_role("button", name="Redeliver").first)
    expect(page.get_by_role("status")).to_contain_text("Redelivery queued")
    visit.shot("redelivered")
    visit.submit(page.get_by_role("link", name="Delete endpoint"))
    visit.shot("delete-confirm")
    visit.submit(page.get_by_role("button", name="Delete endpoint"))
    expect(page.get_by_role("status")).to_contain_text("Endpoint deleted")
    visit.shot("deleted")
