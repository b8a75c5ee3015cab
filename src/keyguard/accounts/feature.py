"""What the accounts feature registers (CONTRACT §9): its pages and its problems."""

from __future__ import annotations

from keyguard.accounts import member_pages, pages, passkey_pages
from keyguard.accounts.errors import (
    CsrfInvalid,
    InvitationInvalid,
    PasskeyInvalid,
    ReauthenticationRequired,
    SecondFactorInvalid,
    SessionExpired,
    SignInFailed,
    SignUpClosed,
)
from keyguard.feature import Feature

FEATURE = Feature(
    name="accounts",
    routers=(pages.router, passkey_pages.router, member_pages.router),
    errors=(
        SignInFailed,
        SecondFactorInvalid,
        SessionExpired,
        ReauthenticationRequired,
        CsrfInvalid,
        InvitationInvalid,
        SignUpClosed,
        PasskeyInvalid,
    ),
)
