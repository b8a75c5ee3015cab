"""What the dashboard registers (CONTRACT §12): its pages."""

from __future__ import annotations

from keyguard.dashboard import key_pages, root_key_pages, usage_pages
from keyguard.feature import Feature

FEATURE = Feature(
    name="dashboard", routers=(key_pages.router, root_key_pages.router, usage_pages.router)
)
