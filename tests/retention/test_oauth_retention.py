"""OAuth bookkeeping is pruned a day after it stops mattering: codes and access-token
records a day after expiry, refresh tokens (spent ones included) a day after theirs."""

from __future__ import annotations

from sqlalchemy import func, select

from account_pages import ADMIN_EMAIL, ADMIN_PASSWORD, sign_in
from keyguard.oauth.models import OAuthAccessToken, OAuthCode, OAuthRefreshToken
from keyguard.retention.service import prune
from keyguard.uploads.store import LocalFileStore
from oauth_helpers import REDIRECT, basic, code_for, pkce_pair, register_app


async def _rows(runtime) -> tuple[int, int, int]:
    async with runtime.sessions() as db:
        counted = []
        for model in (OAuthCode, OAuthAccessToken, OAuthRefreshToken):
            counted.append((await db.execute(select(func.count()).select_from(model))).scalar())
    return tuple(counted)


async def test_expired_oauth_rows_go_a_day_later(runtime, client, admin, project_id, clock):
    app = await register_app(runtime, project_id)
    assert (await sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)).status_code == 303
    verifier, challenge = pkce_pair()
    code = await code_for(client, app.app.client_id, challenge)
    made = await client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
        headers=basic(app.app.client_id, app.client_secret),
    )
    assert made.status_code == 200
    store = LocalFileStore(runtime.settings.data_dir / "photos")
    assert await _rows(runtime) == (1, 1, 1)

    # The code and the access token: both expired over a day ago.
    clock.advance(86400 + runtime.settings.oauth_access_token_seconds + 1)
    assert (await prune(runtime, store)).oauth_rows == 2
    assert await _rows(runtime) == (0, 0, 1)

    clock.advance(runtime.settings.oauth_refresh_token_days * 86400)
    assert (await prune(runtime, store)).oauth_rows == 1
    assert await _rows(runtime) == (0, 0, 0)
