"""Client-side helpers for calling Keyguard-protected APIs with httpx."""

from keyguard.client.auth import SignedRequestAuth, TotpAuth

__all__ = ["SignedRequestAuth", "TotpAuth"]
