"""What the OAuth feature registers: the authorization server and the apps API (CONTRACT §8)."""

from __future__ import annotations

from keyguard.feature import Feature
from keyguard.oauth import endpoints, pages, routes
from keyguard.oauth.errors import ERRORS

FEATURE = Feature(
    name="oauth",
    routers=(endpoints.router, pages.router, routes.router, routes.keys_router),
    errors=ERRORS,
)
