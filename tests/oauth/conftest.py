"""OAuth tests: the issuer is the test client's own origin, so the URLs a standard client
reads from discovery reach the same in-process server (and its cookies)."""

from __future__ import annotations

import pytest

from keyguard.settings import Settings

ISSUER = "https://testserver"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"public_url": ISSUER})
