"""A real Redis (KEYGUARD_TEST_REDIS_URL, started by scripts/test-services)."""

from __future__ import annotations

import pytest

from helpers import redis_url


@pytest.fixture(name="redis_url")
def redis_url_fixture() -> str:
    return redis_url()
