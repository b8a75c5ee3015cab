"""Request and response bodies of the project routes (CONTRACT §3)."""

from __future__ import annotations

from datetime import datetime

from pydantic import (
    BaseModel,
    Field,
)

from keyguard.api.schema_base import Name, Strict


class ProjectCreate(Strict):
    name: Name
    key_prefix: str | None = Field(default=None, max_length=16)


class ProjectOut(BaseModel):
    id: str
    name: str
    key_prefix: str
    created_at: datetime


class ProjectCreated(ProjectOut):
    webhook_secret: str
