"""Two instances sharing one database and Redis: a token issued by one is accepted by the
other, and a token revoked on one is refused by the other at once."""

from __future__ import annotations

import httpx
import pytest

from helpers import redis_url
from keyguard.app import create_asgi
from keyguard.runtime import Runtime
from keyguard.settings import Settings
from oauth_helpers import access_token, basic, probe

pytestmark = pytest.mark.redis


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"redis_url": redis_url()})


async def test_a_token_revoked_on_one_instance_is_refused_on_the_other(
    settings, clock, client, runtime, app, project_id
):
    token = await access_token(runtime, project_id=project_id, app=app)
    other = await Runtime.start(settings, clock=clock)
    try:
        transport = httpx.ASGITransport(app=create_asgi(other), client=("198.51.100.1", 1))
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c2:
            assert (await probe(c2, token)).status_code == 404  # issued by the first
            revoked = await client.post(
                "/oauth/revoke",
                data={"token": token},
                headers=basic(app.app.client_id, app.client_secret),
            )
            assert revoked.status_code == 200
            refused = await probe(c2, token)
            assert refused.status_code == 401
            assert refused.json()["code"] == "token_revoked"
    finally:
        await other.close()
