"""What the metrics feature registers (CONTRACT §11)."""

from __future__ import annotations

from keyguard.feature import Feature
from keyguard.metrics import routes

FEATURE = Feature(name="metrics", routers=(routes.router,))
