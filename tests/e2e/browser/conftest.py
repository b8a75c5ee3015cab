"""Fixtures of the browser tests: Debian's Chromium, driven by Playwright, against a real
``keyguard serve`` at https://localhost:PORT (see keyguard_browser.py for how the browser
comes to trust it).

Playwright never downloads a browser here: the executable is ``KEYGUARD_TEST_CHROMIUM``
(``scripts/test-services`` prints it), else ``/usr/bin/chromium``; missing, the tests fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

# Let the test modules import the sibling `keyguard_browser` module.
sys.path.insert(0, str(Path(__file__).parent))

from keyguard_browser import (
    ARTEFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    LAPTOP,
    Certificates,
    KeyguardServer,
    OpenPage,
    Visit,
    slug,
    spki_sha256,
    start_keyguard,
)

from keyguard.crypto.tls import ensure_dev_certificates

# Argon2 on a busy 2-core machine: a sign-in can take a few seconds.
expect.set_options(timeout=15_000)


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """The CA and server certificate every server of the session uses."""
    made = ensure_dev_certificates(tmp_path_factory.mktemp("tls-seed"))
    return Certificates(made.server_cert.parent, spki_sha256(made.server_cert))


@pytest.fixture(scope="module")
def keyguard(
    tmp_path_factory: pytest.TempPathFactory, certificates: Certificates
) -> Iterator[KeyguardServer]:
    """One initialised server per test module."""
    with start_keyguard(tmp_path_factory.mktemp("keyguard"), certificates) as server:
        yield server


@pytest.fixture(scope="session")
def chromium() -> str:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: install Debian's chromium (scripts/test-services"
            " does, as root) or set KEYGUARD_TEST_CHROMIUM. Playwright must not download one.",
            pytrace=False,
        )
    return CHROMIUM


@pytest.fixture(scope="module")
def browser(chromium: str, certificates: Certificates) -> Iterator[Browser]:
    # Module scope, not session: while Playwright's sync API is running, it marks its
    # event loop as the thread's running loop, and the async tests of other modules need
    # their own.
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium,
            headless=True,
            args=[*CHROMIUM_ARGS, f"--ignore-certificate-errors-spki-list={certificates.pin}"],
        )
        try:
            yield launched
        finally:
            launched.close()
    assert asyncio._get_running_loop() is None, "Playwright left its event loop running"


_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the test, for fixtures to see whether it failed."""
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


@pytest.fixture
def open_page(
    request: pytest.FixtureRequest, browser: Browser, keyguard: KeyguardServer
) -> Iterator[OpenPage]:
    """``open_page(server=None, label="", **context_options)``: a tab in a new browser
    context (its own cookies) on ``server`` (default: the module's), at laptop width unless
    ``viewport`` says otherwise; ``label`` prefixes its screenshots' names.

    Fails the test if a tab showed a page it did not photograph, or logged a console error.
    """
    module = request.node.module.__name__.rsplit(".", 1)[-1]
    folder = ARTEFACTS / slug(module) / slug(request.node.name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    visits: list[Visit] = []

    def open_(server: KeyguardServer | None = None, label: str = "", **options: Any) -> Visit:
        options.setdefault("viewport", LAPTOP)
        context = browser.new_context(base_url=(server or keyguard).url, **options)
        context.set_default_timeout(15_000)
        visit = Visit(context.new_page(), folder, f"{label}-" if label else "")
        visits.append(visit)
        return visit

    yield open_

    failed = any(report.failed for report in request.node.stash.get(_REPORTS, {}).values())
    for visit in visits:
        if failed and not visit.page.is_closed():
            with contextlib.suppress(Exception):
                visit.shot("at-failure")
        visit.finish()
        visit.page.context.close()
    if failed:
        return
    missed = [url for visit in visits for url in visit.unphotographed]
    problems = [problem for visit in visits for problem in visit.problems]
    assert not missed, f"pages visited without a screenshot: {missed}"
    assert not problems, "\n".join(problems)


@pytest.fixture
def visit(open_page: OpenPage) -> Visit:
    """A tab on the module's server."""
    return open_page()
