"""CSRF tokens for every state-changing form (ASVS V4.2.2), with no server-side state.

A token is an HMAC, under a subkey of the master key, of what identifies the browser:
its session (signed in) or a random ``__Host-`` cookie set with the first form (signed
out, so sign-in forms are covered too). A page of another site can make the browser
send its cookies but cannot read them, so it cannot compute the token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

ANONYMOUS_COOKIE = "__Host-keyguard-csrf"
FIELD = "csrf_token"


def new_binding() -> str:
    return secrets.token_urlsafe(24)


# Domain separation: a signed-out browser's cookie value can never stand for a session's
# hash, or the other way round.
def session_binding(session_token_hash: str) -> str:
    return f"session:{session_token_hash}"


def anonymous_binding(cookie: str) -> str:
    return f"anonymous:{cookie}"


def token_for(key: bytes, binding: str) -> str:
    digest = hmac.new(key, f"csrf:{binding}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:24]).decode()


def valid(key: bytes, binding: str | None, token: str | None) -> bool:
    if not binding or not token or len(token) > 64:
        return False
    return hmac.compare_digest(token, token_for(key, binding))
