"""Settings from ``KEYGUARD_*`` environment variables (and an optional ``keyguard.env`` file).

List-valued settings take comma-separated values (``10.0.0.0/8,192.168.0.0/16``).
"""

from __future__ import annotations

import functools
import ipaddress
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from keyguard.engine.ipallow import parse_network

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


CommaList = Annotated[list[str], NoDecode, BeforeValidator(_split_commas)]


def _header_name(value: Any) -> Any:
    if isinstance(value, str):
        return value.strip().lower() or None
    return value


def _note_name(value: str | None) -> str | None:
    # A signed note's key name (c2sp.org/signed-note): no spaces, no '+'.
    if value is not None and (not value or "+" in value or any(c.isspace() for c in value)):
        raise ValueError("the audit origin must be non-empty, without spaces or '+'")
    return value


ClientCertHeader = Literal["client-cert", "x-forwarded-client-cert", "x-ssl-client-cert"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="KEYGUARD_", env_file="keyguard.env", extra="ignore"
    )

    data_dir: Path = Path("keyguard-data")
    database_url: str | None = None  # default: sqlite under data_dir
    redis_url: str | None = None  # unset: in-process state
    # CONTRACT §11: with Redis unreachable, checks that need it answer 503
    # state_unavailable ("closed"), or let the request through ("open": rate limits,
    # replay and TOTP-step checks are skipped while it is down, and a warning is logged).
    state_failure: Literal["closed", "open"] = "closed"
    # CONTRACT §11: GET /metrics takes this bearer token as well as a root key.
    metrics_token: SecretStr | None = None
    # How long one call to Redis may take before it counts as unavailable.
    state_timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    host: str = "localhost"
    port: int = 8443
    http_port: int | None = None  # optional plain-HTTP listener (redirects only)
    # `keyguard serve` also runs the gateway, in the same process, when this is set.
    gateway_upstream: str | None = None
    gateway_port: int = Field(default=8444, ge=0, le=65535)
    # That gateway enforces this OpenAPI document's per-operation security (CONTRACT §8).
    gateway_openapi: Path | None = None
    # The URL clients reach Keyguard at (behind a proxy); by default taken from the request.
    public_url: str | None = None
    header_prefix: str = "Keyguard"
    key_prefix: str = "kg"
    trusted_proxies: CommaList = Field(default_factory=list)
    # The one header a trusted proxy forwards the client certificate in (it must set or
    # strip it on every request). Unset: no forwarded certificate is believed.
    client_cert_header: Annotated[ClientCertHeader | None, BeforeValidator(_header_name)] = None
    webhook_allow_private: CommaList = Field(default_factory=list)
    # smtp://user:pass@host:587 (STARTTLS when offered), smtps://; it may hold a password,
    # so it is left out of the settings' repr.
    smtp_url: str | None = Field(default=None, repr=False)
    # Leaked-key reports (CONTRACT §10): the reporters' public keys, in the shape of
    # GitHub's published list. Unset: POST /v1/leaks refuses every report.
    leak_reporters: Path | None = None
    mail_from: str | None = None  # default: keyguard@<host of the public URL>
    # Accounts (CONTRACT §9). "invite": people join by invitation; "open": anyone signs up.
    signup: Literal["invite", "open"] = "invite"
    # NIST SP 800-63B AAL2: sign in again after 30 idle minutes, and at least every 12 h.
    session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    session_max_hours: int = Field(default=12, ge=1, le=24 * 30)
    # Changing password, email, two-factor or passkeys needs a sign-in this recent.
    reauth_minutes: int = Field(default=10, ge=1, le=24 * 60)
    # The audit log's name in its signed checkpoints (CONTRACT §10), fixed by the first
    # checkpoint; default ``host[:port]/keyguard/audit`` of the public URL.
    audit_origin: Annotated[str | None, AfterValidator(_note_name)] = None
    # How often a new checkpoint goes out as an ``audit.checkpoint`` webhook event.
    audit_checkpoint_seconds: float = Field(default=3600.0, gt=0, le=7 * 86400)
    master_key: SecretStr | None = None  # generated into data_dir when unset (embedded)
    # Keys a master-key rotation moved aside (comma-separated): they open, never seal.
    previous_master_keys: SecretStr | None = None
    key_cache_ttl_seconds: float = 30.0
    max_body_bytes: int = 1_048_576
    max_upload_bytes: int = 10 * 1_048_576
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)  # per attempt
    webhook_concurrency: int = Field(default=32, ge=1, le=1024)  # attempts in flight
    # Retention, in days; 0 keeps for ever. Webhook history: messages whose deliveries
    # are all finished (never a pending one). Photos: those of sessions expired that long.
    webhook_retention_days: int = Field(default=90, ge=0, le=36_500)
    photo_retention_days: int = Field(default=0, ge=0, le=36_500)
    # Usage (CONTRACT §10): counts are added to the database this often (the most a
    # kill -9 can lose), and minute and hour buckets are kept this long (0: for ever).
    usage_flush_seconds: float = Field(default=5.0, gt=0, le=60)
    usage_minute_retention_days: int = Field(default=2, ge=0, le=36_500)
    usage_hour_retention_days: int = Field(default=90, ge=0, le=36_500)
    # OAuth 2 (CONTRACT §8). Access tokens are short-lived (RFC 9700 §2.2); refresh
    # tokens rotate on every use and the family lives this long without one.
    oauth_access_token_seconds: int = Field(default=600, ge=30, le=86_400)
    oauth_refresh_token_days: int = Field(default=30, ge=1, le=365)
    # The ``aud`` of access tokens: the API they are for. Default: the public URL.
    oauth_audience: str | None = None
    log_level: str = "info"
    # CONTRACT §11: "json" writes one JSON object per log line, with the request's id.
    log_format: Literal["text", "json"] = "text"

    @field_validator("trusted_proxies", "webhook_allow_private")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        # The same parser the engine uses, so a value refused there (e.g. a zone id such
        # as fe80::1%eth0) is refused here, when the configuration is loaded.
        for item in value:
            parse_network(item)
        return value

    @field_validator("header_prefix")
    @classmethod
    def _valid_header_prefix(cls, value: str) -> str:
        if not value or not all(c.isascii() and (c.isalnum() or c == "-") for c in value):
            raise ValueError("header prefix must be ASCII letters, digits or '-'")
        return value

    @property
    def public_base_url(self) -> str:
        """Where clients reach Keyguard, for URLs it hands out (upload pages, download
        links in webhooks). Never taken from a request's Host header, which the client
        (an anonymous uploader, even) controls."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "localhost" if self.host in ("", "0.0.0.0", "::") else self.host  # noqa: S104
        if ":" in host:
            host = f"[{host}]"
        return f"https://{host}:{self.port}"

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'keyguard.db').resolve()}"

    @property
    def trusted_proxy_networks(self) -> tuple[Network, ...]:
        return _networks(tuple(self.trusted_proxies))

    @property
    def webhook_private_networks(self) -> tuple[Network, ...]:
        # Read on every webhook send: parsed once per distinct list, not each time.
        return _networks(tuple(self.webhook_allow_private))


@functools.lru_cache(maxsize=32)
def _networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(n, strict=False) for n in cidrs)
