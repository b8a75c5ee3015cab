"""The dashboard's tests: the initial administrator, signed in, owner of the default project."""

from __future__ import annotations

import httpx
import pytest

from account_pages import ADMIN_EMAIL, ADMIN_PASSWORD, sign_in
from keyguard.accounts.service import InitResult


@pytest.fixture
async def owner(client: httpx.AsyncClient, admin: InitResult) -> httpx.AsyncClient:
    assert (await sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)).status_code == 303
    return client
