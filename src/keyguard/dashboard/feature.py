"""What the dashboard registers (CONTRACT §12): its pages."""

from __future__ import annotations

from keyguard.dashboard import (
    key_pages,
    oauth_app_pages,
    project_pages,
    root_key_pages,
    upload_pages,
    usage_pages,
    webhook_pages,
)
from keyguard.feature import Feature

FEATURE = Feature(
    name="dashboard",
    routers=(
        project_pages.router,
        key_pages.router,
        root_key_pages.router,
        usage_pages.router,
        upload_pages.router,
        webhook_pages.router,
        oauth_app_pages.router,
    ),
)
