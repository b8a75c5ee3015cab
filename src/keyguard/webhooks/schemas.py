"""Request and response bodies of the webhook management API (CONTRACT §7)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=4096)


class EndpointCreate(_Strict):
    url: str = Field(min_length=1, max_length=2048)
    events: list[str] = Field(min_length=1, max_length=50)
    description: str = Field(default="", max_length=200)


class EndpointUpdate(_Strict):
    """What may change on an endpoint: its events, its description (not its URL)."""

    events: list[str] | None = Field(default=None, min_length=1, max_length=50)
    description: str | None = Field(default=None, max_length=200)


class EndpointOut(BaseModel):
    id: str
    project_id: str
    url: str
    events: list[str]
    description: str
    enabled: bool
    disabled_reason: Literal["gone", "failing", "manual"] | None
    disabled_at: datetime | None
    failing_since: datetime | None
    created_at: datetime


class AttemptOut(BaseModel):
    attempt: int
    at: datetime
    status_code: int | None = Field(description="The receiver's HTTP status, if it answered")
    latency_ms: float
    response_body: str = Field(description="The start of the response body (truncated)")
    error: str | None = Field(description="Why no usable answer came back, e.g. 'timeout'")


class DeliveryOut(BaseModel):
    id: str
    message_id: str = Field(description="The webhook-id header: stable across retries")
    event_type: str
    status: Literal["pending", "succeeded", "failed", "cancelled"]
    attempt_count: int
    next_attempt_at: datetime | None
    last_error: str | None
    created_at: datetime
    attempts: list[AttemptOut]


class DeliveryPage(BaseModel):
    data: list[DeliveryOut]


class SecretRotate(_Strict):
    overlap_seconds: int = Field(default=86_400, ge=0, le=86_400 * 7)


class SecretRotated(BaseModel):
    webhook_secret: str = Field(description="The new secret, shown only in this response")
    previous_secret_valid_until: datetime
