"""A service's refusal as a sentence in the page's language.

Refusals with a stable code of their own (a revoked key, the last root key, …) have a
message in the catalogs (``problem.<code>``). The generic ones (``validation_failed``,
``conflict``) carry a detail written for API clients, in English: it is shown inside
a sentence of the page's language rather than dropped, since it says what to fix.
"""

from __future__ import annotations

from keyguard.errors import KeyguardError
from keyguard.i18n import has, translate

# Codes whose every detail says the same thing: the catalog's sentence replaces it.
_OWN_SENTENCE = frozenset(
    {
        "key_revoked",
        "key_already_rotated",
        "key_expired",
        "last_root_key",
        "totp_invalid",
        "endpoint_disabled",
    }
)


def refusal(exc: KeyguardError) -> str:
    key = f"problem.{exc.code}"
    if exc.code in _OWN_SENTENCE and has(key):
        return translate(key)
    return translate("problem.refused", detail=exc.detail or exc.title)
