"""What the help centre registers (CONTRACT §12): its public pages."""

from __future__ import annotations

from keyguard.feature import Feature
from keyguard.help import routes

FEATURE = Feature(name="help", routers=(routes.router,))
