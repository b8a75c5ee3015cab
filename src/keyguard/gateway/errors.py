"""Problems only the gateway answers (CONTRACT §5)."""

from __future__ import annotations

from keyguard.errors import (
    Forbidden,
    KeyguardError,
)


class BadGateway(KeyguardError):
    status = 502
    code = "bad_gateway"
    title = "The upstream service could not be reached"


class InvalidPath(KeyguardError):
    """A request target the gateway will not forward: dot segments (raw or
    percent-encoded), backslashes, or a target that is not an origin-form path."""

    code = "invalid_path"
    title = "The request path is not allowed"


class OperationNotDeclared(KeyguardError):
    """``--openapi``: the document lists no such method on such a path, so the request is
    refused whoever sends it (an upstream route nobody documented is not exposed)."""

    status = 404
    code = "operation_not_declared"
    title = "The API document declares no such operation"


class TokenProjectMismatch(Forbidden):
    """An operation needing a key and an access token: the token's OAuth app is not of
    the key's project (seed 002: the token's client belongs to the key's application)."""

    code = "token_project_mismatch"
    title = "The access token and the API key belong to different projects"
