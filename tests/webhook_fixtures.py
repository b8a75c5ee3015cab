"""Fixtures for the tests that deliver webhooks (webhooks, uploads, retention): loopback
allowed, a scriptable receiver, fake DNS. Each of those folders' ``conftest.py`` imports
them; every test there runs on SQLite and PostgreSQL through the root ``settings``.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest

from keyguard.runtime import Runtime
from keyguard.settings import Settings
from keyguard.webhooks.worker import DeliveryWorker
from webhook_helpers import FakeDns, Receiver


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Local development mode: loopback receivers over plain http.
    return settings.model_copy(update={"webhook_allow_private": ["127.0.0.0/8"]})


@pytest.fixture
def dns() -> FakeDns:
    return FakeDns()


@pytest.fixture
def runtime(runtime: Runtime, dns: FakeDns) -> Runtime:
    # No test here asks real DNS: host names resolve through `dns`, at registration and
    # in any worker built without its own resolver (the seam is `Runtime.webhook_resolver`).
    runtime.webhook_resolver = dns
    return runtime


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    yield r
    await r.close()


@pytest.fixture
def worker(runtime: Runtime) -> DeliveryWorker:
    return DeliveryWorker(runtime, rng=random.Random(7), timeout=5.0)
