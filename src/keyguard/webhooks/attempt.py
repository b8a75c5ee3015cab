"""The outcome of one delivery attempt: what the outbox records and retries on."""

from __future__ import annotations

from dataclasses import dataclass

# Stable error codes (stored with each attempt; never free text).
INVALID_URL = "invalid_url"  # malformed URL: permanent until the endpoint is edited
HTTPS_REQUIRED = "https_required"  # plain http towards an address outside allow_private
SSRF_BLOCKED = "ssrf_blocked"  # the host is, or resolves to, a forbidden address
DNS_FAILED = "dns_failed"
TIMEOUT = "timeout"  # the whole attempt (DNS, connect, TLS, response) ran out of time
CONNECT_FAILED = "connect_failed"
TLS_ERROR = "tls_error"  # handshake or certificate verification failed
NETWORK_ERROR = "network_error"  # connection broke or the response was not valid HTTP
REDIRECT_NOT_FOLLOWED = "redirect_not_followed"  # a 3xx answer; redirects are never followed
# The answer's body was longer than Keyguard reads, so it was cut (and the connection
# dropped). Only a note: the status code still decides, so a 2xx answer is a success.
RESPONSE_TRUNCATED = "response_truncated"
# Keyguard could not build the request (e.g. the project's sealed secret did not open);
# nothing was sent.
INTERNAL_ERROR = "internal_error"


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """One attempt. ``error`` is set when no usable answer came back, or on a 3xx;
    any other non-2xx answer is told by ``status_code`` alone. An answer whose body was
    cut has ``error`` :data:`RESPONSE_TRUNCATED` whatever its status (still a success
    when 2xx)."""

    url: str
    status_code: int | None
    latency_ms: float
    response_excerpt: str
    error: str | None
    retry_after: float | None  # seconds, from the response's Retry-After header

    @property
    def success(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


__all__ = [
    "CONNECT_FAILED",
    "DNS_FAILED",
    "HTTPS_REQUIRED",
    "INTERNAL_ERROR",
    "INVALID_URL",
    "NETWORK_ERROR",
    "REDIRECT_NOT_FOLLOWED",
    "RESPONSE_TRUNCATED",
    "SSRF_BLOCKED",
    "TIMEOUT",
    "TLS_ERROR",
    "AttemptResult",
]
