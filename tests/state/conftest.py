"""A real Redis (KEYGUARD_TEST_REDIS_URL, started by scripts/test-services)."""

from __future__ import annotations

import os

import pytest

REDIS_URL = os.environ.get("KEYGUARD_TEST_REDIS_URL")


@pytest.fixture
def redis_url() -> str:
    if REDIS_URL:
        return REDIS_URL
    if os.environ.get("CI") == "true":
        pytest.fail("KEYGUARD_TEST_REDIS_URL is required in CI (scripts/test-services starts it)")
    pytest.skip("KEYGUARD_TEST_REDIS_URL not configured (run: eval $(scripts/test-services))")
