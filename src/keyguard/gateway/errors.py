"""Problems only the gateway answers (CONTRACT §5)."""

from __future__ import annotations

from keyguard.errors import (
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
