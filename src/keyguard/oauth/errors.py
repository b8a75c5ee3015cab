"""The OAuth feature's problems (CONTRACT §2, §8).

Endpoint errors are problem+json that also carry RFC 6749 §5.2's members, ``error`` and
``error_description``, so a standard OAuth client reads them as it expects; the stable
``code`` is the RFC's error name. Access-token refusals at the doors are 401s like a
bad key's, with ``WWW-Authenticate: Bearer error="invalid_token"`` (RFC 6750 §3).
"""

from __future__ import annotations

from typing import Any, ClassVar

from keyguard.errors import AuthenticationError, KeyguardError


class OAuthError(KeyguardError):
    """An error of the authorization server's endpoints, in RFC 6749's words too."""

    def to_problem(self) -> dict[str, Any]:
        body = super().to_problem()
        body["error"] = self.code
        body["error_description"] = self.detail or self.title
        return body


class InvalidRequest(OAuthError):
    code = "invalid_request"
    title = "The OAuth request is missing a parameter or is malformed"


class InvalidClient(OAuthError):
    status = 401
    code = "invalid_client"
    title = "Client authentication failed"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail)
        # RFC 6749 §5.2: a 401 names the scheme the client may authenticate with.
        self.headers["WWW-Authenticate"] = 'Basic realm="keyguard"'


class InvalidGrant(OAuthError):
    code = "invalid_grant"
    title = "The authorization code or refresh token is not valid"


class UnauthorizedClient(OAuthError):
    code = "unauthorized_client"
    title = "This client may not use this grant type"


class UnsupportedGrantType(OAuthError):
    code = "unsupported_grant_type"
    title = "This grant type is not supported"


class InvalidScope(OAuthError):
    code = "invalid_scope"
    title = "A requested scope is not allowed"


class UnsupportedResponseType(OAuthError):
    code = "unsupported_response_type"
    title = "Only the authorization code flow (response_type=code) is supported"


class TokenRefused(AuthenticationError):
    """An access token a door refused (RFC 6750 §3)."""

    error: ClassVar[str] = "invalid_token"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail)
        self.headers["WWW-Authenticate"] = f'Bearer error="{self.error}"'


class InvalidToken(TokenRefused):
    """Malformed, wrong signature, algorithm, type, issuer or audience: one code, as for
    keys, so a forger learns nothing about which check failed."""

    code = "invalid_token"
    title = "The access token is not valid"


class TokenExpired(TokenRefused):
    code = "token_expired"
    title = "The access token has expired"


class TokenRevoked(TokenRefused):
    code = "token_revoked"
    title = "The access token was revoked"


ERRORS: tuple[type[KeyguardError], ...] = (
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    UnsupportedResponseType,
    InvalidToken,
    TokenExpired,
    TokenRevoked,
)
