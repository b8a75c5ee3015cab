"""OAuth tests: the issuer is the test client's own origin, so the URLs a standard client
reads from discovery reach the same in-process server (and its cookies)."""

from __future__ import annotations

import httpx
import pytest

from account_pages import ADMIN_EMAIL, ADMIN_PASSWORD, sign_in
from keyguard.accounts.service import InitResult
from keyguard.oauth.apps import CreatedApp
from keyguard.runtime import Runtime
from keyguard.settings import Settings
from oauth_helpers import pkce_pair, register_app

ISSUER = "https://testserver"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"public_url": ISSUER})


@pytest.fixture
async def person(client: httpx.AsyncClient, admin: InitResult) -> httpx.AsyncClient:
    """The signed-in owner of the default project, in a browser."""
    assert (await sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)).status_code == 303
    return client


@pytest.fixture
async def app(runtime: Runtime, project_id: str) -> CreatedApp:
    return await register_app(runtime, project_id, scopes=("read", "write"))


@pytest.fixture
def pkce() -> tuple[str, str]:
    return pkce_pair()
