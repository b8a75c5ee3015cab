"""Photo uploads, framework-free: type sniffing, file names, storage, download links."""

from keyguard.uploads.filenames import display_name
from keyguard.uploads.links import (
    LINK_TTL_SECONDS,
    sign_download_link,
    verify_download_link,
)
from keyguard.uploads.sniff import sniff_image_type
from keyguard.uploads.store import FileStore, LocalFileStore

__all__ = [
    "LINK_TTL_SECONDS",
    "FileStore",
    "LocalFileStore",
    "display_name",
    "sign_download_link",
    "sniff_image_type",
    "verify_download_link",
]
