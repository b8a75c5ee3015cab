"""Problems only the accounts feature raises (CONTRACT §2: each a stable code)."""

from __future__ import annotations

from keyguard.errors import AuthenticationError, KeyguardError


class SignInFailed(AuthenticationError):
    """Wrong email or password: one answer for both, so it reveals neither."""

    code = "sign_in_failed"
    title = "The email or password is not right"


class SecondFactorInvalid(AuthenticationError):
    code = "second_factor_invalid"
    title = "The code is not right, or was already used"


class SessionExpired(AuthenticationError):
    code = "session_expired"
    title = "Your session has ended: sign in again"


class ReauthenticationRequired(KeyguardError):
    status = 403
    code = "reauthentication_required"
    title = "Confirm it is you before changing this"


class CsrfInvalid(KeyguardError):
    status = 403
    code = "csrf_invalid"
    title = "The form has expired or did not come from this site: load it again"


class InvitationInvalid(KeyguardError):
    status = 410
    code = "invitation_invalid"
    title = "This invitation was already used, has expired, or does not exist"


class SignUpClosed(KeyguardError):
    status = 403
    code = "sign_up_closed"
    title = "Accounts are created by invitation only"


class PasskeyInvalid(AuthenticationError):
    code = "passkey_invalid"
    title = "The passkey could not be verified"
