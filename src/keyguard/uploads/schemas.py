"""Response bodies of the photo upload routes (CONTRACT §6)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
)

from keyguard.api.schema_base import Strict


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


def bcrypt_sized(value: str) -> str:
    # bcrypt reads 72 *bytes*; 72 characters of "é" are 144. Refuse, never truncate.
    if len(value.encode()) > 72:
        raise ValueError("must be at most 72 bytes in UTF-8")
    return value


class SessionCreate(Strict):
    delivery_mode: Literal["webhook", "poll"]
    webhook_url: str | None = Field(default=None, max_length=2048)
    password: Annotated[str, AfterValidator(bcrypt_sized)] | None = Field(
        default=None, min_length=1, max_length=72
    )
    expires_in: int = Field(default=86_400, ge=60, le=86_400 * 30)


class SessionOut(BaseModel):
    id: str
    upload_url: str
    delivery_mode: str
    webhook_url: str | None
    password_protected: bool
    created_at: datetime
    expires_at: datetime
