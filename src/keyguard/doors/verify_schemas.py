"""Request and response bodies of the verify API (CONTRACT §5)."""

from __future__ import annotations

from pydantic import (
    BaseModel,
    Field,
)

from keyguard.api.schema_base import Scope, Strict


class VerifyRequest(Strict):
    key: str | None = Field(
        default=None,
        max_length=512,
        description="The presented key (or a bare key id for a signed request)",
    )
    token: str | None = Field(
        default=None,
        max_length=4096,
        description="An OAuth access token (the JWT a client sent as Authorization: Bearer)",
    )
    headers: dict[str, str] | None = Field(
        default=None,
        max_length=100,
        description=(
            "The request headers as the calling service received them, instead of `key`: "
            "any of the four presentation forms is read from them, and Origin, Referer and "
            "the X-{P}-TOTP / -Timestamp / -Signature headers when not given explicitly"
        ),
    )
    ip: str | None = Field(default=None, max_length=64)
    origin: str | None = Field(default=None, max_length=2048)
    referer: str | None = Field(default=None, max_length=4096)
    totp: str | None = Field(default=None, max_length=16)
    method: str = Field(default="GET", max_length=16)
    path: str = Field(default="/", max_length=8192)
    body_base64: str | None = Field(
        default=None, description="Raw request body, needed to check a request signature"
    )
    body_sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-fA-F]{64}$",
        description="Hex SHA-256 of the body; checked against body_base64 when both are sent",
    )
    timestamp: str | None = Field(default=None, max_length=32)
    signature: str | None = Field(default=None, max_length=128)
    client_cert_pem: str | None = Field(default=None, max_length=16384)
    https: bool = True
    required_scopes: list[Scope] = Field(default_factory=list, max_length=100)


class RateLimitState(BaseModel):
    limit: int
    remaining: int
    reset: int


class VerifyResult(BaseModel):
    valid: bool
    code: str | None
    key_id: str | None = None
    project_id: str | None = None
    scopes: list[str] = Field(default_factory=list)
    environment: str | None = None
    # For an access token: the token's id, its app's client id and the person it acts for
    # (None for a client-credentials token).
    token_id: str | None = None
    client_id: str | None = None
    subject: str | None = None
    ratelimit: RateLimitState | None = None
