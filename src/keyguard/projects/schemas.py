"""Request and response bodies of the project routes (CONTRACT §3)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    Field,
)

from keyguard.api.schema_base import Name, Strict

# What a leak report (POST /v1/leaks) does to the project's keys (CONTRACT §10).
LeakPolicy = Annotated[
    Literal["revoke", "quarantine"],
    Field(description="revoke: for good; quarantine: refused until an owner releases it"),
]


class ProjectCreate(Strict):
    name: Name
    key_prefix: str | None = Field(default=None, max_length=16)
    max_key_age_days: int = Field(
        default=90, ge=1, le=3650, description="Keys should be rotated at this age (days)"
    )
    enforce_max_key_age: bool = False
    leak_policy: LeakPolicy = "revoke"

    def settings(self) -> dict[str, Any]:
        """The service's keyword arguments (the API and the dashboard both create
        projects through this)."""
        return {
            "name": self.name,
            "key_prefix": self.key_prefix,
            "max_key_age_days": self.max_key_age_days,
            "enforce_max_key_age": self.enforce_max_key_age,
            "leak_policy": self.leak_policy,
        }


class ProjectUpdate(Strict):
    """The key-age policy (CONTRACT §3); each field optional."""

    max_key_age_days: int | None = Field(default=None, ge=1, le=3650)
    enforce_max_key_age: bool | None = None
    leak_policy: LeakPolicy | None = None
    anomaly_thresholds: dict[str, int] | None = Field(
        default=None, description="Usage anomaly thresholds that differ from the defaults"
    )


class ProjectOut(BaseModel):
    id: str
    name: str
    key_prefix: str
    created_at: datetime
    max_key_age_days: int
    enforce_max_key_age: bool
    leak_policy: LeakPolicy
    anomaly_thresholds: dict[str, int]


class ProjectCreated(ProjectOut):
    webhook_secret: str
