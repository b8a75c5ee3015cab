"""What the engine knows about a key: an immutable snapshot, cached in memory."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class RateLimitRule:
    limit: int
    period_seconds: int


@dataclass(frozen=True, slots=True, repr=False)
class KeyRecord:
    id: str
    project_id: str | None
    environment: str
    secret_hash: bytes
    scopes: frozenset[str]
    is_root: bool = False
    expires_at: float | None = None  # unix seconds
    revoked: bool = False
    ip_allowlist: tuple[str, ...] = ()
    allowed_domains: tuple[str, ...] = ()
    rate_limit: RateLimitRule | None = None
    totp_secret: str | None = None  # opened from its sealed form; only set when enabled
    signing_secret: str | None = None
    require_signature: bool = False
    certificate_fingerprints: frozenset[str] = field(default_factory=frozenset)

    def __repr__(self) -> str:  # never print hashes or secrets
        return f"KeyRecord(id={self.id!r}, project_id={self.project_id!r})"


class KeyLoader(Protocol):
    async def __call__(self, key_id: str) -> KeyRecord | None: ...


@dataclass(frozen=True, slots=True)
class RateLimitStatus:
    limit: int
    remaining: int
    reset: int  # seconds until the window frees up


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller: what every door hands to the application."""

    key_id: str
    project_id: str | None
    environment: str
    scopes: frozenset[str]
    is_root: bool
    ratelimit: RateLimitStatus | None = None
