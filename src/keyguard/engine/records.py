"""What the engine knows about a key: an immutable snapshot, cached in memory.

A record compiles its restrictions once, when it is built (a cache miss): the IP
allowlist into interval tables, the allowed domains into host dicts, the TOTP secret
into its raw key. A request then pays a bisect, a few dict probes, three HMACs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from keyguard.crypto.totp import TotpKey
from keyguard.engine.ipallow import IpAllowlist
from keyguard.engine.origins import DomainAllowlist
from keyguard.wire import ratelimit_fields, ratelimit_header_items

_NO_VALIDITY: Mapping[str, tuple[float, float]] = MappingProxyType({})


def _signature_tokens(signing_secret: str) -> str:
    # A name for the secret that reveals nothing of it (a truncated hash).
    digest = hashlib.sha256(b"signing-secret-id:" + signing_secret.encode()).hexdigest()
    return f"sig:{digest[:32]}:"


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
    quarantined: bool = False
    ip_allowlist: tuple[str, ...] = ()
    allowed_domains: tuple[str, ...] = ()
    rate_limit: RateLimitRule | None = None
    totp_secret: str | None = None  # opened from its sealed form; only set when enabled
    signing_secret: str | None = None
    require_signature: bool = False
    certificate_fingerprints: frozenset[str] = field(default_factory=frozenset)
    # fingerprint -> (not_before, not_after) in unix seconds, as stored at registration.
    certificate_validity: Mapping[str, tuple[float, float]] = field(
        default_factory=lambda: _NO_VALIDITY, compare=False
    )
    # Compiled forms (None: no such restriction), built once in __post_init__.
    ip_rules: IpAllowlist | None = field(init=False, default=None, compare=False)
    domain_rules: DomainAllowlist | None = field(init=False, default=None, compare=False)
    totp_key: TotpKey | None = field(init=False, default=None, compare=False)
    # Names in shared state, made once: the rate-limit bucket, and the prefix of spent
    # signatures (named by a hash of the signing secret, so keys sharing it share them).
    rate_bucket: str = field(init=False, default="", compare=False)
    signature_tokens: str = field(init=False, default="", compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rate_bucket", f"rl:{self.id}")
        if self.signing_secret is not None:
            object.__setattr__(self, "signature_tokens", _signature_tokens(self.signing_secret))
        # ValueError for an entry the API would have refused: the key then fails to load
        # (and so to verify) rather than silently widening its allowlist.
        if self.ip_allowlist:
            object.__setattr__(self, "ip_rules", IpAllowlist(self.ip_allowlist))
        if self.allowed_domains:
            object.__setattr__(self, "domain_rules", DomainAllowlist(self.allowed_domains))
        if self.totp_secret is not None:
            object.__setattr__(self, "totp_key", TotpKey(self.totp_secret))

    def __repr__(self) -> str:  # never print hashes or secrets
        return f"KeyRecord(id={self.id!r}, project_id={self.project_id!r})"


@dataclass(frozen=True, slots=True)
class RateLimitStatus:
    limit: int
    remaining: int
    reset: int  # seconds until the window frees up

    def header_items(self) -> tuple[tuple[bytes, bytes], ...]:
        """``RateLimit-*`` as raw ASGI header pairs, for every response to a rate-limited key."""
        return ratelimit_header_items(self.limit, self.remaining, self.reset)

    def fields(self) -> dict[str, str]:
        """``RateLimit-*`` as response header fields."""
        return ratelimit_fields(self.limit, self.remaining, self.reset)
