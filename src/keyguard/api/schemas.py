"""Request and response bodies of the management API (CONTRACT §3, §5, §6)."""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic import Strict as StrictMode

from keyguard.engine.ipallow import parse_network
from keyguard.engine.origins import normalize_domain_pattern
from keyguard.storage.models import KeyCertificate

MAX_YEAR = 9000
SCOPE_RE = re.compile(r"[a-z0-9][a-z0-9:._/-]{0,99}")
MAX_METADATA_BYTES = 4096


def _clean_name(value: str) -> str:
    value = unicodedata.normalize("NFC", value.strip())
    if not value:
        raise ValueError("must not be empty")
    # Control and format characters (incl. bidi overrides) make names lie in logs and UIs.
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") for c in value):
        raise ValueError("must not contain control or invisible characters")
    return value


Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_clean_name)]


def _scope(value: str) -> str:
    if not SCOPE_RE.fullmatch(value):
        raise ValueError("scopes are 1-100 chars of a-z 0-9 : . _ / - (lower case)")
    return value


Scope = Annotated[str, AfterValidator(_scope)]


def _ip_entry(value: str) -> str:
    # Stored normalised ("10.0.0.1" -> "10.0.0.1/32", host bits cleared); the error
    # names the entry.
    return str(parse_network(value))


IpEntry = Annotated[str, Field(max_length=100), AfterValidator(_ip_entry)]
DomainEntry = Annotated[str, Field(max_length=300), AfterValidator(normalize_domain_pattern)]


def _unique(values: list[str] | None) -> list[str] | None:
    return None if values is None else list(dict.fromkeys(values))


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("must include a timezone (e.g. 2030-01-01T00:00:00Z)")
    try:
        value = value.astimezone(UTC)  # 9999-12-31T23:59-23:59 overflows here
    except OverflowError:
        raise ValueError("is out of range") from None
    if value.year > MAX_YEAR:
        raise ValueError(f"must be before the year {MAX_YEAR + 1}")
    return value


def _iso_string(value: object) -> object:
    if value is not None and not isinstance(value, str):
        raise ValueError("must be an ISO 8601 date-time string")
    return value


# Timestamps arrive as ISO 8601 strings (never numbers): the one place a JSON value is
# converted.
AwareDatetime = Annotated[
    datetime | None, StrictMode(False), BeforeValidator(_iso_string), AfterValidator(_aware)
]


class Strict(BaseModel):
    """Request bodies: unknown fields refused, and no type coercion (``true`` or ``"5"``
    is not a number, ``1`` is not a boolean)."""

    model_config = ConfigDict(extra="forbid", strict=True, str_max_length=4096)


class RateLimitBody(Strict):
    limit: int = Field(ge=1, le=1_000_000_000)
    period_seconds: int = Field(ge=1, le=86_400 * 31)


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
    ip_allowlist: Annotated[list[IpEntry], Field(max_length=10_000), AfterValidator(_unique)] = (
        Field(default_factory=list)
    )
    allowed_domains: Annotated[
        list[DomainEntry], Field(max_length=1000), AfterValidator(_unique)
    ] = Field(default_factory=list)
    rate_limit: RateLimitBody | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class KeyUpdate(_KeySettings):
    name: Name | None = None
    scopes: list[Scope] | None = Field(default=None, max_length=100)
    expires_at: AwareDatetime = None
    ip_allowlist: Annotated[
        list[IpEntry] | None, Field(max_length=10_000), AfterValidator(_unique)
    ] = None
    allowed_domains: Annotated[
        list[DomainEntry] | None, Field(max_length=1000), AfterValidator(_unique)
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


class KeyRotate(Strict):
    grace_seconds: int = Field(default=86_400, ge=0, le=86_400 * 90)


class CertificateOut(BaseModel):
    fingerprint_sha256: str
    subject: str
    not_before: datetime
    not_after: datetime

    @classmethod
    def of(cls, cert: KeyCertificate) -> CertificateOut:
        return cls(
            fingerprint_sha256=cert.fingerprint_sha256,
            subject=cert.subject,
            not_before=cert.not_before,
            not_after=cert.not_after,
        )


class RateLimitOut(BaseModel):
    limit: int
    period_seconds: int


class KeyOut(BaseModel):
    id: str
    project_id: str | None
    name: str
    environment: str
    status: Literal["active", "expired", "revoked"]
    scopes: list[str]
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    rotated_from: str | None
    rotated_to: str | None
    ip_allowlist: list[str]
    allowed_domains: list[str]
    rate_limit: RateLimitOut | None
    totp_enabled: bool
    require_signature: bool
    certificates: list[CertificateOut]


class KeyCreated(KeyOut):
    key: str = Field(description="The full key, shown only in this response")
    secret: str = Field(description="The private part of the key, shown only in this response")


class KeyPage(BaseModel):
    data: list[KeyOut]
    next_cursor: str | None


class VerifyRequest(Strict):
    key: str | None = Field(
        default=None,
        max_length=512,
        description="The presented key (or a bare key id for a signed request)",
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
    ratelimit: RateLimitState | None = None


def _bcrypt_sized(value: str) -> str:
    # bcrypt reads 72 *bytes*; 72 characters of "é" are 144. Refuse, never truncate.
    if len(value.encode()) > 72:
        raise ValueError("must be at most 72 bytes in UTF-8")
    return value


class SessionCreate(Strict):
    delivery_mode: Literal["webhook", "poll"]
    webhook_url: str | None = Field(default=None, max_length=2048)
    password: Annotated[str, AfterValidator(_bcrypt_sized)] | None = Field(
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
