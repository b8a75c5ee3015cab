"""Problems of restriction changes."""

from __future__ import annotations

from keyguard.errors import (
    ValidationFailed,
)


class TotpConfirmationInvalid(ValidationFailed):
    """A wrong code when confirming a TOTP enrolment: the body is wrong, not the caller."""

    code = "totp_invalid"
    title = "The TOTP code is not valid"
