"""What the browser tests share: the server they drive, the certificate Chromium trusts, and
:class:`Visit`, a browser tab that photographs every page it shows.

- The server is the real command (``keyguard init`` then ``keyguard serve``), reached at
  ``https://localhost:PORT``: WebAuthn needs a domain as RP ID, and the public URL
  (``KEYGUARD_PUBLIC_URL``) must be the origin the browser uses. The port goes into that URL
  before the server starts, so the test picks a free one and tries another when the server
  exits because it was taken meanwhile.
- Chromium trusts the server certificate without a certificate error (with an interstitial,
  or Playwright's ``ignore_https_errors``, the page counts as a certificate-error page, where
  Chromium refuses WebAuthn): it is launched with ``--ignore-certificate-errors-spki-list``
  naming the SHA-256 of the server certificate's public key. Chromium matches the list
  against the certificates the server sends, which is the leaf only, so the pin is the
  leaf's key (the CA's has no effect). Every server of a test session shares one
  certificate (copied into its data directory before ``keyguard init``, which keeps a valid
  one), so the one pin given when the browser starts covers them all.
- Screenshots: full page, at laptop and phone widths, under ``$KEYGUARD_TEST_ARTEFACTS``
  (default ``tests/e2e/browser/artefacts``), one folder per test.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import os
import re
import shutil
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from keyguard_process import RunningServer, init, serve
from playwright.sync_api import ConsoleMessage, Frame, Locator, Page, Response

CHROMIUM = os.environ.get("KEYGUARD_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
ARTEFACTS = Path(os.environ.get("KEYGUARD_TEST_ARTEFACTS") or Path(__file__).parent / "artefacts")

LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
WIDTHS = (("laptop", LAPTOP), ("phone", PHONE))

# The admin account `keyguard_process.init` creates.
ADMIN_EMAIL = "ops@example.com"
ADMIN_PASSWORD = "e2e password 123"

PORT_ATTEMPTS = 5


# ---- the certificate Chromium is told to trust ---------------------------------------


def spki_sha256(cert_pem: Path) -> str:
    """Base64 SHA-256 of the DER SubjectPublicKeyInfo: what the Chromium flag lists."""
    cert = x509.load_pem_x509_certificate(cert_pem.read_bytes())
    der = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


@dataclass(frozen=True)
class Certificates:
    tls_dir: Path  # ca.pem, ca.key, server.pem, server.key, as `keyguard init` makes them
    pin: str  # spki_sha256 of server.pem


# ---- the server ----------------------------------------------------------------------


@dataclass(frozen=True)
class KeyguardServer:
    url: str  # https://localhost:PORT, also the server's public URL
    email: str
    password: str
    running: RunningServer
    root_key: str
    project_id: str  # the project `keyguard init` made


def free_port() -> int:
    """A port free on 127.0.0.1 and, where there is IPv6, on ::1 (Chromium may try either
    address for ``localhost``)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s4:
            s4.bind(("127.0.0.1", 0))
            port = int(s4.getsockname()[1])
        try:
            with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s6:
                s6.bind(("::1", port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                continue
        return port


@contextlib.contextmanager
def start_keyguard(root: Path, certificates: Certificates) -> Iterator[KeyguardServer]:
    """`keyguard init` then `keyguard serve` on 127.0.0.1, public URL https://localhost:PORT."""
    data = root / "data"
    data.mkdir(parents=True)
    shutil.copytree(certificates.tls_dir, data / "tls")
    made = init(data)
    with contextlib.ExitStack() as stack:
        for attempt in range(1, PORT_ATTEMPTS + 1):
            port = free_port()
            url = f"https://localhost:{port}"
            env = {**os.environ, "KEYGUARD_PUBLIC_URL": url}
            try:
                running = stack.enter_context(
                    serve(data, "--host", "127.0.0.1", "--port", str(port), env=env)
                )
            except AssertionError as exc:
                # The port was free a moment ago; something else bound it since.
                if "address already in use" in str(exc) and attempt < PORT_ATTEMPTS:
                    continue
                raise
            break
        assert spki_sha256(data / "tls" / "server.pem") == certificates.pin, (
            "keyguard replaced the shared test certificate: Chromium would not trust it"
        )
        # The certificate is valid, under Keyguard's CA, for the name the browser uses.
        context = ssl.create_default_context(cafile=str(running.ca))
        with httpx.Client(base_url=url, verify=context, timeout=10) as client:
            assert client.get("/v1/").status_code == 200
        yield KeyguardServer(
            url, ADMIN_EMAIL, ADMIN_PASSWORD, running, made["root_key"], made["project_id"]
        )


# ---- pages and their screenshots -----------------------------------------------------


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "page"


@dataclass
class Visit:
    """One browser tab: navigation helpers, and a screenshot of every page it shows.

    Pages it navigated to without a :meth:`shot`, errors in the browser console, and pages
    wider than the window are collected; the ``open_page`` fixture fails the test on any.
    """

    page: Page
    folder: Path
    label: str = ""
    taken: int = 0
    unphotographed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    _pending: str | None = None

    def __post_init__(self) -> None:
        self.page.on("framenavigated", self._navigated)
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))

    def _navigated(self, frame: Frame) -> None:
        if frame.parent_frame is not None or frame.url.startswith("about:"):
            return
        if self._pending is not None:
            self.unphotographed.append(self._pending)
        self._pending = frame.url

    def _console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        source = message.location.get("url") or ""
        # A page served with an error status (401 after a wrong password) is logged as a
        # failed load of the document itself: expected, and the tests check the status.
        if message.text.startswith("Failed to load resource") and source == self.page.url:
            return
        self.problems.append(f"console error on {self.page.url} ({source}): {message.text}")

    def goto(self, path: str) -> Response:
        response = self.page.goto(path)
        assert response is not None, path
        return response

    def submit(self, control: Locator) -> Response | None:
        """Click a submit button (or a link) and wait for the page it leads to."""
        with self.page.expect_navigation() as navigation:
            control.click()
        return navigation.value

    def press(self, key: str) -> Response | None:
        """Press a key that submits a form, and wait for the page it leads to."""
        with self.page.expect_navigation() as navigation:
            self.page.keyboard.press(key)
        return navigation.value

    def shot(self, name: str) -> None:
        """Full-page screenshots of the current page at laptop and phone widths."""
        self.page.wait_for_load_state("load")
        self.taken += 1
        stem = f"{self.label}{self.taken:02d}-{slug(name)}"
        size = self.page.viewport_size
        for width, viewport in WIDTHS:
            self.page.set_viewport_size(viewport)
            self.page.screenshot(path=self.folder / f"{stem}-{width}.png", full_page=True)
            wide = self.page.evaluate("document.documentElement.scrollWidth")
            if wide > viewport["width"]:
                self.problems.append(
                    f"{self.page.url} scrolls sideways at {width} width: {wide}px wide"
                )
        if size is not None:
            self.page.set_viewport_size(size)
        self._pending = None

    def finish(self) -> None:
        if self._pending is not None:
            self.unphotographed.append(self._pending)
            self._pending = None


# open_page(server=None, label="", **browser_context_options) -> Visit
OpenPage = Callable[..., Visit]
