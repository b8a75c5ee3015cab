"""Fixtures for the webhook and upload tests: loopback allowed, a scriptable receiver,
fake DNS.

Every test here runs on SQLite and PostgreSQL through the root ``settings`` fixture.
"""

from __future__ import annotations

import random
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

# Let test modules import the sibling `webhook_helpers` module.
sys.path.insert(0, str(Path(__file__).parent))

from webhook_helpers import FakeDns, Receiver

from keyguard.runtime import Runtime
from keyguard.settings import Settings
from keyguard.webhooks.worker import DeliveryWorker


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
