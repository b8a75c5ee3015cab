"""One exception hierarchy that carries its wire form (RFC 9457 problem details).

Library code raises these; only the HTTP edge turns them into responses. A ``code`` is
stable and machine-readable; ``title`` is a short human sentence that never contains a
secret or says which part of a credential was wrong.
"""

from __future__ import annotations

from typing import Any, ClassVar

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
    """Malformed, bad checksum, unknown id or wrong secret: deliberately one code."""

    code = "invalid_key"
    title = "The API key is not valid"


class KeyExpired(AuthenticationError):
    code = "key_expired"
    title = "The API key has expired"


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


class SessionPasswordInvalid(AuthenticationError):
    code = "session_password_invalid"
    title = "The session password is missing or wrong"


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


# ---- 404 / 409 / 413 / 422 / 429 -------------------------------------------------------


class NotFound(KeyguardError):
    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(KeyguardError):
    status = 409
    code = "conflict"
    title = "Conflict"


class KeyAlreadyRevoked(Conflict):
    code = "key_revoked"
    title = "The API key has been revoked; revocation is final"


class KeyAlreadyRotated(Conflict):
    code = "key_already_rotated"
    title = "This key was already rotated; rotate its successor"


class KeyExpiredConflict(Conflict):
    code = "key_expired"
    title = "The API key has expired"


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
            self.headers["RateLimit-Limit"] = str(limit)
            self.headers["RateLimit-Remaining"] = "0"
            self.headers["RateLimit-Reset"] = str(max(reset, self.retry_after))


class TotpConfirmationInvalid(ValidationFailed):
    """A wrong code when confirming a TOTP enrolment: the body is wrong, not the caller."""

    code = "totp_invalid"
    title = "The TOTP code is not valid"


class BadGateway(KeyguardError):
    status = 502
    code = "bad_gateway"
    title = "The upstream service could not be reached"


class HeadersTooLarge(KeyguardError):
    status = 431
    code = "headers_too_large"
    title = "Request header fields too large"


__all__ = [
    "AuthenticationError",
    "BadGateway",
    "ClientCertificateInvalid",
    "ClientCertificateRequired",
    "Conflict",
    "CredentialsMissing",
    "Forbidden",
    "HeadersTooLarge",
    "HttpsRequired",
    "InvalidKey",
    "IpNotAllowed",
    "KeyAlreadyRevoked",
    "KeyAlreadyRotated",
    "KeyExpired",
    "KeyExpiredConflict",
    "KeyRevoked",
    "KeyguardError",
    "NotFound",
    "OriginNotAllowed",
    "PayloadTooLarge",
    "RateLimited",
    "RootKeyRequired",
    "ScopeMissing",
    "SessionPasswordInvalid",
    "SignatureExpired",
    "SignatureInvalid",
    "SignatureReplayed",
    "TotpConfirmationInvalid",
    "TotpInvalid",
    "TotpRequired",
    "UnsupportedMediaType",
    "ValidationFailed",
]


# ---- Webhooks and upload sessions (CONTRACT §6-§7) ------------------------------------


class WebhookUrlInvalid(ValidationFailed):
    code = "invalid_url"
    title = "The webhook URL is not valid"


class WebhookUrlHttpsRequired(ValidationFailed):
    code = "https_required"
    title = "Webhook URLs must use https"


class WebhookUrlBlocked(ValidationFailed):
    code = "ssrf_blocked"
    title = "The webhook URL targets an address webhooks may not reach"


class EndpointDisabled(Conflict):
    code = "endpoint_disabled"
    title = "The webhook endpoint is disabled"


class SessionExpired(KeyguardError):
    status = 410
    code = "session_expired"
    title = "The upload session has expired"


class PhotoLimitReached(Conflict):
    code = "photo_limit_reached"
    title = "The upload session accepts no more photos"


class NotAnImage(UnsupportedMediaType):
    code = "unsupported_image_type"
    title = "The file is not a JPEG, PNG, GIF, WebP or HEIC image"


class DownloadLinkInvalid(Forbidden):
    code = "download_link_invalid"
    title = "The download link is not valid"


class DownloadLinkExpired(Forbidden):
    code = "download_link_expired"
    title = "The download link has expired"


__all__ += [
    "DownloadLinkExpired",
    "DownloadLinkInvalid",
    "EndpointDisabled",
    "NotAnImage",
    "PhotoLimitReached",
    "SessionExpired",
    "WebhookUrlBlocked",
    "WebhookUrlHttpsRequired",
    "WebhookUrlInvalid",
]


# ---- The gateway (CONTRACT §5) --------------------------------------------------------


class InvalidPath(KeyguardError):
    """A request target the gateway will not forward: dot segments (raw or
    percent-encoded), backslashes, or a target that is not an origin-form path."""

    code = "invalid_path"
    title = "The request path is not allowed"


__all__ += ["InvalidPath"]
