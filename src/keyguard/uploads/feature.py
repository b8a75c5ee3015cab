"""What the uploads feature registers: Upload sessions and photos (CONTRACT §6)."""

from __future__ import annotations

from keyguard.feature import Feature
from keyguard.uploads import routes, session_routes
from keyguard.uploads.errors import (
    DownloadLinkExpired,
    DownloadLinkInvalid,
    NotAnImage,
    PhotoLimitReached,
    SessionExpired,
    SessionPasswordInvalid,
)

FEATURE = Feature(
    name="uploads",
    routers=(session_routes.router, routes.router),
    errors=(
        SessionExpired,
        SessionPasswordInvalid,
        PhotoLimitReached,
        NotAnImage,
        DownloadLinkInvalid,
        DownloadLinkExpired,
    ),
)
