"""Request and response bodies of the key routes (CONTRACT §3)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    field_validator,
    model_validator,
)

from keyguard.api.schema_base import (
    MAX_METADATA_BYTES,
    AwareDatetime,
    DomainEntry,
    IpEntry,
    Name,
    RateLimitBody,
    Scope,
    Strict,
    unique,
)
from keyguard.keys.service import KeySpec


class _KeySettings(Strict):
    @field_validator("metadata", check_fields=False)
    @classmethod
    def _small_metadata(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and len(json.dumps(value)) > MAX_METADATA_BYTES:
            raise ValueError(f"metadata must serialise to at most {MAX_METADATA_BYTES} bytes")
        return value


class KeyCreate(_KeySettings):
    name: Name
    environment: Literal["live", "test"]  # required: a key is live or test by choice
    scopes: list[Scope] = Field(default_factory=list, max_length=100)
    expires_at: AwareDatetime = None
    ip_allowlist: Annotated[list[IpEntry], Field(max_length=10_000), AfterValidator(unique)] = (
        Field(default_factory=list)
    )
    allowed_domains: Annotated[
        list[DomainEntry], Field(max_length=1000), AfterValidator(unique)
    ] = Field(default_factory=list)
    rate_limit: RateLimitBody | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    def spec(self) -> KeySpec:
        """The service's spec (the API and the dashboard both create keys through this)."""
        return KeySpec(
            name=self.name,
            environment=self.environment,
            scopes=tuple(self.scopes),
            expires_at=self.expires_at,
            metadata=self.metadata,
            ip_allowlist=tuple(self.ip_allowlist),
            allowed_domains=tuple(self.allowed_domains),
            rate_limit=_rate(self.rate_limit),
        )


class KeyUpdate(_KeySettings):
    name: Name | None = None
    scopes: list[Scope] | None = Field(default=None, max_length=100)
    expires_at: AwareDatetime = None
    ip_allowlist: Annotated[
        list[IpEntry] | None, Field(max_length=10_000), AfterValidator(unique)
    ] = None
    allowed_domains: Annotated[
        list[DomainEntry] | None, Field(max_length=1000), AfterValidator(unique)
    ] = None
    rate_limit: RateLimitBody | None = None
    metadata: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _no_null_for_required(self) -> KeyUpdate:
        # null means "remove" for expires_at, rate_limit and metadata; these cannot be removed.
        for field in ("name", "scopes", "ip_allowlist", "allowed_domains"):
            if field in self.model_fields_set and getattr(self, field) is None:
                raise ValueError(f"{field} cannot be null")
        return self

    def changes(self) -> dict[str, Any]:
        """Field -> new value, for the fields sent (what ``update_key`` takes)."""
        changes: dict[str, Any] = {}
        for field in self.model_fields_set:
            value = getattr(self, field)
            changes[field] = _rate(value) if field == "rate_limit" else value
        return changes


def _rate(body: RateLimitBody | None) -> tuple[int, int] | None:
    return (body.limit, body.period_seconds) if body else None


class KeyRotate(Strict):
    grace_seconds: int = Field(default=86_400, ge=0, le=86_400 * 90)


class CertificateOut(BaseModel):
    fingerprint_sha256: str
    subject: str
    not_before: datetime
    not_after: datetime


class RateLimitOut(BaseModel):
    limit: int
    period_seconds: int


class KeyOut(BaseModel):
    id: str
    project_id: str | None
    name: str
    environment: str
    status: Literal["active", "expired", "revoked", "quarantined"]
    scopes: list[str]
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    quarantined_at: datetime | None = Field(
        description="Reported leaked in a project whose leak_policy is quarantine: refused "
        "until released or regenerated"
    )
    rotated_from: str | None
    rotated_to: str | None
    ip_allowlist: list[str]
    allowed_domains: list[str]
    rate_limit: RateLimitOut | None
    totp_enabled: bool
    require_signature: bool
    certificates: list[CertificateOut]
    rotate_by: datetime | None = Field(
        description="When the key should be rotated: its secret's age reaches the project's "
        "max_key_age_days (none for root keys)"
    )
    rotation_due: bool = Field(description="rotate_by has passed and the key is not revoked")


class KeyCreated(KeyOut):
    key: str = Field(description="The full key, shown only in this response")
    secret: str = Field(description="The private part of the key, shown only in this response")


class KeyPage(BaseModel):
    data: list[KeyOut]
    next_cursor: str | None
