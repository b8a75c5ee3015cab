"""Problems of the key lifecycle (409 conflicts)."""

from __future__ import annotations

from keyguard.errors import (
    Conflict,
)


class KeyAlreadyRevoked(Conflict):
    code = "key_revoked"
    title = "The API key has been revoked; revocation is final"


class KeyAlreadyRotated(Conflict):
    code = "key_already_rotated"
    title = "This key was already rotated; rotate its successor"


class KeyExpiredConflict(Conflict):
    code = "key_expired"
    title = "The API key has expired"


class KeyNotQuarantined(Conflict):
    code = "key_not_quarantined"
    title = "The API key is not quarantined"


class LastRootKey(Conflict):
    code = "last_root_key"
    title = "The last active root key cannot be revoked: create another one first"
