"""What the dashboard registers (CONTRACT §12): its pages."""

from __future__ import annotations

from keyguard.dashboard import key_pages
from keyguard.feature import Feature

FEATURE = Feature(name="dashboard", routers=(key_pages.router,))
