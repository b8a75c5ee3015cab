"""Response bodies of the photo upload routes (CONTRACT §6)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class PhotoOut(BaseModel):
    id: str
    session_id: str
    filename: str = Field(description="The client's file name, sanitised, for display only")
    content_type: str = Field(description="Sniffed from the file's bytes")
    size: int
    sha256: str
    created_at: datetime
    download_url: str | None = Field(
        default=None, description="A signed link that works without credentials until it expires"
    )
    download_url_expires_at: datetime | None = None


class PhotoPage(BaseModel):
    data: list[PhotoOut]
