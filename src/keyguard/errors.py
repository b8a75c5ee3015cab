"""One exception hierarchy that carries its wire form (RFC 9457 problem details).

Library code raises these; only the HTTP edge turns them into responses. A ``code`` is
stable and machine-readable; ``title`` is a short human sentence that never contains a
secret or says which part of a credential was wrong.
"""

from __future__ import annotations

from typing import Any, ClassVar

from keyguard.wire import ratelimit_fields

PROBLEM_BASE = "https://keyguard.dev/problems/"


class KeyguardError(Exception):
    """Base of every error Keyguard raises on purpose."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.extra = extra
        # Headers the edge must add to the response (e.g. Retry-After).
        self.headers: dict[str, str] = {}

    def to_problem(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + self.code,
            "title": self.title,
            "status": self.status,
            "code": self.code,
        }
        if self.detail:
            body["detail"] = self.detail
        body.update(self.extra)
        return body

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r})"


# ---- 401: the caller is not authenticated -------------------------------------------


class AuthenticationError(KeyguardError):
    status = 401
    code = "unauthenticated"
    title = "Authentication required"


class CredentialsMissing(AuthenticationError):
    code = "credentials_missing"
    title = "No API key was presented"


class InvalidKey(AuthenticationError):
    """Malformed, bad checksum, forged id (wrong tag), unknown id or wrong secret:
    deliberately one code."""

    code = "invalid_key"
    title = "The API key is not valid"


class KeyExpired(AuthenticationError):
    code = "key_expired"
    title = "The API key has expired"


class KeyQuarantined(AuthenticationError):
    code = "key_quarantined"
    title = "The API key was reported leaked and is quarantined"


class KeyRevoked(AuthenticationError):
    code = "key_revoked"
    title = "The API key has been revoked"


class TotpRequired(AuthenticationError):
    code = "totp_required"
    title = "This key requires a TOTP code"


class TotpInvalid(AuthenticationError):
    code = "totp_invalid"
    title = "The TOTP code is not valid"


class SignatureInvalid(AuthenticationError):
    code = "signature_invalid"
    title = "The request signature is not valid"


class SignatureExpired(AuthenticationError):
    code = "signature_expired"
    title = "The request timestamp is outside the allowed window"


class SignatureReplayed(AuthenticationError):
    code = "signature_replayed"
    title = "This request signature was already used"


# ---- 403: authenticated, but not allowed -----------------------------------------------


class Forbidden(KeyguardError):
    status = 403
    code = "forbidden"
    title = "Forbidden"


class IpNotAllowed(Forbidden):
    code = "ip_not_allowed"
    title = "Requests from this IP address are not allowed for this key"


class OriginNotAllowed(Forbidden):
    code = "origin_not_allowed"
    title = "Requests from this origin are not allowed for this key"


class ClientCertificateRequired(Forbidden):
    code = "client_certificate_required"
    title = "This key requires a client certificate"


class ClientCertificateInvalid(Forbidden):
    code = "client_certificate_invalid"
    title = "The client certificate is not accepted for this key"


class ScopeMissing(Forbidden):
    code = "scope_missing"
    title = "The key lacks a scope this operation needs"


class HttpsRequired(Forbidden):
    code = "https_required"
    title = "HTTPS is required"


class RootKeyRequired(Forbidden):
    code = "root_key_required"
    title = "This operation needs a root key"


class RoleTooLow(Forbidden):
    code = "role_too_low"
    title = "Your role in this project does not allow this"


# ---- 404 / 409 / 413 / 422 / 429 -------------------------------------------------------
# (problems of one feature live in its errors.py)


class NotFound(KeyguardError):
    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(KeyguardError):
    status = 409
    code = "conflict"
    title = "Conflict"


class PayloadTooLarge(KeyguardError):
    status = 413
    code = "payload_too_large"
    title = "The request body is too large"


class UnsupportedMediaType(KeyguardError):
    status = 415
    code = "unsupported_media_type"
    title = "Unsupported media type"


class ValidationFailed(KeyguardError):
    status = 422
    code = "validation_failed"
    title = "The request is not valid"


class RateLimited(KeyguardError):
    """429 with ``Retry-After`` and the ``RateLimit-*`` fields of the limit that refused."""

    status = 429
    code = "rate_limited"
    title = "Rate limit exceeded"

    def __init__(
        self, detail: str | None = None, *, limit: int = 0, retry_after: int = 1, reset: int = 0
    ) -> None:
        super().__init__(detail)
        self.limit = limit
        self.retry_after = max(1, retry_after)
        self.headers["Retry-After"] = str(self.retry_after)
        if limit:
            self.headers.update(ratelimit_fields(limit, 0, max(reset, self.retry_after)))


class NulInRequest(KeyguardError):
    status = 400
    code = "nul_in_request"
    title = "The request's path or query contains a NUL character"


class HeadersTooLarge(KeyguardError):
    status = 431
    code = "headers_too_large"
    title = "Request header fields too large"


# ---- 500 ---------------------------------------------------------------------------------


class StateUnavailable(KeyguardError):
    """The shared state (Redis) did not answer: a check that needs it fails closed."""

    status = 503
    code = "state_unavailable"
    title = "Shared state is unavailable"


class NotReady(KeyguardError):
    """``GET /readyz``: something this instance needs is down (named in ``down``)."""

    status = 503
    code = "not_ready"
    title = "Not ready"


class InternalError(KeyguardError):
    """What an unexpected exception is answered with: nothing about it reaches the client."""

    status = 500
    code = "internal_error"
    title = "Internal server error"


__all__ = [
    "AuthenticationError",
    "ClientCertificateInvalid",
    "ClientCertificateRequired",
    "Conflict",
    "CredentialsMissing",
    "Forbidden",
    "HeadersTooLarge",
    "HttpsRequired",
    "InternalError",
    "InvalidKey",
    "IpNotAllowed",
    "KeyExpired",
    "KeyQuarantined",
    "KeyRevoked",
    "KeyguardError",
    "NotFound",
    "NotReady",
    "NulInRequest",
    "OriginNotAllowed",
    "PayloadTooLarge",
    "RateLimited",
    "RoleTooLow",
    "RootKeyRequired",
    "ScopeMissing",
    "SignatureExpired",
    "SignatureInvalid",
    "SignatureReplayed",
    "StateUnavailable",
    "TotpInvalid",
    "TotpRequired",
    "UnsupportedMediaType",
    "ValidationFailed",
]
