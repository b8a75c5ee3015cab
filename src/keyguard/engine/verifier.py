"""The policy engine: (credentials + request facts) -> Principal, or a KeyguardError.

No HTTP and no SQL here. Checks run cheapest first, and nothing that consumes state (replay
caches, TOTP steps, rate-limit counters) runs before every stateless check has passed.
"""

from __future__ import annotations

from collections.abc import Iterable

from keyguard.clock import Clock
from keyguard.crypto.hashing import SecretHasher
from keyguard.engine.cache import KeyCache
from keyguard.engine.facts import Credentials, RequestFacts
from keyguard.engine.records import KeyRecord, Principal
from keyguard.errors import (
    InvalidKey,
    KeyExpired,
    KeyRevoked,
    RootKeyRequired,
    ScopeMissing,
)


class PolicyEngine:
    """One verifier behind every door (middleware, verify API, gateway)."""

    def __init__(self, cache: KeyCache, hasher: SecretHasher, clock: Clock) -> None:
        self.cache = cache
        self._hasher = hasher
        self._clock = clock

    async def verify(
        self,
        credentials: Credentials,
        facts: RequestFacts,
        *,
        required_scopes: Iterable[str] = (),
        root: bool = False,
    ) -> Principal:
        record = self._check_secret(await self.cache.get(credentials.key_id), credentials)
        self._check_lifecycle(record)
        if root != record.is_root:
            # A root key is a management credential, never a project key, and vice versa.
            if root:
                raise RootKeyRequired()
            raise InvalidKey()
        for scope in required_scopes:
            if scope not in record.scopes:
                raise ScopeMissing(required=scope)
        return Principal(
            key_id=record.id,
            project_id=record.project_id,
            environment=record.environment,
            scopes=record.scopes,
            is_root=record.is_root,
        )

    def _check_secret(self, record: KeyRecord | None, credentials: Credentials) -> KeyRecord:
        if credentials.secret is None:
            # A bare id is only a credential for signed requests (checked later); without a
            # signing secret on the key it proves nothing.
            if record is None or record.signing_secret is None:
                raise InvalidKey()
            return record
        # Unknown ids do the same hashing work as wrong secrets (no timing oracle).
        if not self._hasher.matches(
            credentials.secret, None if record is None else record.secret_hash
        ):
            raise InvalidKey()
        if record is None:  # unreachable: matches() is False for unknown ids
            raise InvalidKey()
        return record

    def _check_lifecycle(self, record: KeyRecord) -> None:
        if record.revoked:
            raise KeyRevoked()
        if record.expires_at is not None and record.expires_at <= self._clock.now():
            raise KeyExpired()
