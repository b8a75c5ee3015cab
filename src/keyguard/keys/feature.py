"""What the keys feature registers: API keys (CONTRACT §3)."""

from __future__ import annotations

from keyguard.feature import Feature
from keyguard.keys import root_routes, routes
from keyguard.keys.errors import (
    KeyAlreadyRevoked,
    KeyAlreadyRotated,
    KeyExpiredConflict,
    KeyNotQuarantined,
    LastRootKey,
)

FEATURE = Feature(
    name="keys",
    routers=(routes.router, root_routes.router),
    errors=(
        KeyAlreadyRevoked,
        KeyAlreadyRotated,
        KeyExpiredConflict,
        KeyNotQuarantined,
        LastRootKey,
    ),
)
