"""Problems of upload sessions and photos (CONTRACT §6)."""

from __future__ import annotations

from keyguard.errors import (
    AuthenticationError,
    Conflict,
    Forbidden,
    KeyguardError,
    UnsupportedMediaType,
)


class SessionPasswordInvalid(AuthenticationError):
    code = "session_password_invalid"
    title = "The session password is missing or wrong"


class SessionExpired(KeyguardError):
    status = 410
    code = "session_expired"
    title = "The upload session has expired"


class PhotoLimitReached(Conflict):
    code = "photo_limit_reached"
    title = "The upload session accepts no more photos"


class NotAnImage(UnsupportedMediaType):
    code = "unsupported_image_type"
    title = "The file is not a JPEG, PNG, GIF, WebP or HEIC image"


class DownloadLinkInvalid(Forbidden):
    code = "download_link_invalid"
    title = "The download link is not valid"


class DownloadLinkExpired(Forbidden):
    code = "download_link_expired"
    title = "The download link has expired"
