"""What the usage feature registers (CONTRACT §10): its API."""

from __future__ import annotations

from keyguard.feature import Feature
from keyguard.usage import routes

FEATURE = Feature(name="usage", routers=(routes.router,))
