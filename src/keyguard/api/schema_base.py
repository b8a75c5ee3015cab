"""What every feature's request bodies share: strictness, names, scopes, times."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
)
from pydantic import Strict as StrictMode

from keyguard.engine.ipallow import parse_network
from keyguard.engine.origins import normalize_domain_pattern

MAX_YEAR = 9000
# The largest integer a database BIGINT holds: a request's integer that reaches SQL is
# bounded by it (a larger one is a 422, never a driver's OverflowError and a 500).
SQL_BIGINT_MAX = 2**63 - 1


SCOPE_RE = re.compile(r"[a-z0-9][a-z0-9:._/-]{0,99}")


MAX_METADATA_BYTES = 4096


def clean_name(value: str) -> str:
    value = unicodedata.normalize("NFC", value.strip())
    if not value:
        raise ValueError("must not be empty")
    # Control and format characters (incl. bidi overrides) make names lie in logs and UIs.
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") for c in value):
        raise ValueError("must not contain control or invisible characters")
    return value


def scope_name(value: str) -> str:
    if not SCOPE_RE.fullmatch(value):
        raise ValueError("scopes are 1-100 chars of a-z 0-9 : . _ / - (lower case)")
    return value


def ip_entry(value: str) -> str:
    # Stored normalised ("10.0.0.1" -> "10.0.0.1/32", host bits cleared); the error
    # names the entry.
    return str(parse_network(value))


def unique(values: list[str] | None) -> list[str] | None:
    return None if values is None else list(dict.fromkeys(values))


def aware(value: datetime | None) -> datetime | None:
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


def iso_string(value: object) -> object:
    if value is not None and not isinstance(value, str):
        raise ValueError("must be an ISO 8601 date-time string")
    return value


class Strict(BaseModel):
    """Request bodies: unknown fields refused, and no type coercion (``true`` or ``"5"``
    is not a number, ``1`` is not a boolean)."""

    model_config = ConfigDict(extra="forbid", strict=True, str_max_length=4096)


class RateLimitBody(Strict):
    limit: int = Field(ge=1, le=1_000_000_000)
    period_seconds: int = Field(ge=1, le=86_400 * 31)


Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(clean_name)]


Scope = Annotated[str, AfterValidator(scope_name)]


IpEntry = Annotated[str, Field(max_length=100), AfterValidator(ip_entry)]


DomainEntry = Annotated[str, Field(max_length=300), AfterValidator(normalize_domain_pattern)]


# Timestamps arrive as ISO 8601 strings (never numbers): the one place a JSON value is
# converted.
AwareDatetime = Annotated[
    datetime | None, StrictMode(False), BeforeValidator(iso_string), AfterValidator(aware)
]
