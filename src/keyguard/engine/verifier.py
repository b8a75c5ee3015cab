"""The policy engine: (credentials + request facts) -> Principal, or a KeyguardError.

No HTTP and no SQL here. Checks run cheapest first, and nothing that consumes state
(replay caches, TOTP steps, rate-limit counters) runs before every stateless check has
passed; a key without a given restriction skips its check entirely:

1. key: format/checksum (already, in ``extract_credentials``), the id's keyed tag (no
   look-up for an id nobody issued), look-up, secret (or, for a bare id, a signing
   secret), revoked, expired, root vs project;
2. transport: HTTPS, IP allowlist, allowed domains, client certificate;
3. scopes;
4. proofs, stateless: request signature and timestamp, TOTP code (failures throttled);
5. state: claim the signature (replay cache), claim the TOTP step, count the request
   against the key's rate limit.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable

from keyguard.clock import Clock, has_passed
from keyguard.crypto.certificates import info_from_der
from keyguard.crypto.hashing import ProvenSecrets, SecretHasher
from keyguard.crypto.keys import KeyIdTagger
from keyguard.crypto.request_signing import TIMESTAMP_WINDOW, verify_signed_request
from keyguard.engine.cache import KeyCache
from keyguard.engine.facts import AccessToken, Credentials, RequestFacts
from keyguard.engine.metrics import CheckMetrics
from keyguard.engine.permissions import check_key_kind
from keyguard.engine.principals import (
    KeyPrincipal,
    Presented,
    Principal,
    SessionVerifier,
    TokenVerifier,
)
from keyguard.engine.records import KeyRecord, RateLimitStatus
from keyguard.engine.totp_guard import TOTP_FAILURES, TotpGuard, step_token
from keyguard.errors import (
    ClientCertificateInvalid,
    ClientCertificateRequired,
    CredentialsMissing,
    HttpsRequired,
    InvalidKey,
    IpNotAllowed,
    KeyExpired,
    KeyguardError,
    KeyQuarantined,
    KeyRevoked,
    OriginNotAllowed,
    RateLimited,
    ScopeMissing,
    SignatureInvalid,
    SignatureReplayed,
    StateUnavailable,
    TotpRequired,
)
from keyguard.state.protocols import StateStores

# A signature is remembered for longer than any timestamp it could carry stays acceptable
# (±300 s around now), so a replay is refused for the whole window on both sides.
SIGNATURE_TTL = 2 * TIMESTAMP_WINDOW

log = logging.getLogger("keyguard.engine")


# Principals kept for keys without a rate limit (one per cached key at most).
_PRINCIPALS_KEPT = 100_000


class PolicyEngine:
    """One verifier behind every door (middleware, verify API, gateway)."""

    def __init__(
        self,
        cache: KeyCache,
        hasher: SecretHasher,
        clock: Clock,
        *,
        state: StateStores,
        key_ids: KeyIdTagger,
        totp_failures: tuple[int, int] = TOTP_FAILURES,
    ) -> None:
        self.cache = cache
        self._key_ids = key_ids
        self._secrets = ProvenSecrets(hasher)
        # A key's principal when no rate limit varies it: built once per cached record.
        self._principals: dict[str, tuple[KeyRecord, KeyPrincipal]] = {}
        self._clock = clock
        self._limiter = state.rate_limiter
        self._ledger = state.ledger
        self._totp = TotpGuard(state, clock, failures=totp_failures)
        # Told (key id, project id, code, client ip) of each refusal of an identified key.
        self.on_refusal: Callable[[str, str | None, str, str | None], None] | None = None
        # Told (key id, project id, refusal code or None, client ip) of every check of an
        # identified key, answered or refused: usage counting (no I/O allowed).
        self.on_use: Callable[[str, str | None, str | None, object], None] | None = None
        # Checks per door and result, and their latency (GET /metrics); the doors count.
        self.metrics = CheckMetrics()
        # The other two kinds of principal: plugged in by the OAuth and accounts features.
        self.token_verifier: TokenVerifier | None = None
        self.session_verifier: SessionVerifier | None = None

    async def authenticate(
        self,
        presented: Presented,
        facts: RequestFacts,
        *,
        required_scopes: Iterable[str] = (),
        root: bool = False,
    ) -> Principal:
        """Any presented credential → its principal, or the problem that refuses it."""
        if isinstance(presented, Credentials):
            return await self.verify(presented, facts, required_scopes=required_scopes, root=root)
        if isinstance(presented, AccessToken):
            if self.token_verifier is None:
                raise InvalidKey()  # what any Bearer value we cannot verify gets
            # On the management API too: authorize() then lets only a person's token on.
            return await self.token_verifier.verify(
                presented, facts, required_scopes=required_scopes
            )
        if self.session_verifier is None or not root:
            # A person's session is a credential of the management API only: never of a
            # project's own API, the gateway or the verify API.
            raise CredentialsMissing()
        return await self.session_verifier.verify(presented, facts)

    async def lookup(self, key_id: str) -> KeyRecord | None:
        """The key's record (through the cache), or None. An id that no key can have (a
        wrong tag, or an untagged id that did not exist when we started) is not looked
        up: the public checksum is easy to forge, and each look-up may be a query. A key
        already in the cache was admitted when it was loaded: not checked again."""
        record = self.cache.peek(key_id)
        if record is not None:
            return record
        if not self._key_ids.admits(key_id):
            return None
        return await self.cache.get(key_id)

    async def verify(
        self,
        credentials: Credentials,
        facts: RequestFacts,
        *,
        required_scopes: Iterable[str] = (),
        root: bool = False,
    ) -> KeyPrincipal:
        # A forged id is refused as an unknown one is (same work), never looked up.
        record = self.cache.peek(credentials.key_id)  # lookup()'s first step, inlined
        if record is None:
            record = await self.lookup(credentials.key_id)
        record = self._check_secret(record, credentials)
        if credentials.secret is None:
            # A bare public id (a signed request) proves nothing until its signature
            # checks: verified first, so a wrong one learns nothing of the key's other
            # restrictions, and refused without a trace (no audit row, no usage count,
            # no failure counter), since anyone can send a public id.
            self._check_signature(record, facts)
        try:
            signed = self._check_request(record, credentials, facts, required_scopes, root)
            if signed or record.totp_key is not None or record.rate_limit is not None:
                principal = await self._consume(record, facts, signed)
            else:
                principal = self._principal(record)
        except StateUnavailable:
            raise  # the server's trouble, not the key's: neither counted nor audited
        except KeyguardError as refusal:
            if self.on_use is not None:
                self.on_use(record.id, record.project_id, refusal.code, facts.client_ip)
            # Every response to a rate-limited key says where its limit stands, a refusal
            # too (which counted nothing); but only to a caller who proved the key's
            # secret: a bare public id (a signed request) proves nothing before its
            # signature is checked.
            if credentials.secret is not None:
                await self._report_rate_limit(record, refusal)
            # Only refusals of an identified key are reported: unknown ids and wrong
            # secrets would let anyone turn junk requests into audit writes.
            if self.on_refusal is not None:
                ip = None if facts.client_ip is None else str(facts.client_ip)
                self.on_refusal(record.id, record.project_id, refusal.code, ip)
            raise
        if self.on_use is not None:
            self.on_use(record.id, record.project_id, None, facts.client_ip)
        return principal

    async def _report_rate_limit(self, record: KeyRecord, refusal: KeyguardError) -> None:
        rule = record.rate_limit
        if rule is None or "RateLimit-Limit" in refusal.headers:
            return
        try:
            now = await self._limiter.peek(record.rate_bucket, rule.limit, rule.period_seconds)
        except Exception:  # the limiter's store is down: the refusal stands without them
            log.warning("rate limit state unavailable for RateLimit headers", exc_info=True)
            return
        status = RateLimitStatus(now.limit, now.remaining, now.reset_seconds)
        refusal.headers.update(status.fields())

    def _check_request(
        self,
        record: KeyRecord,
        credentials: Credentials,
        facts: RequestFacts,
        required_scopes: Iterable[str],
        root: bool,
    ) -> bool:
        """The checks that read no shared state; True when the request must be signed."""
        self._check_lifecycle(record)
        check_key_kind(record.is_root, root_required=root)
        if not facts.https:
            raise HttpsRequired()
        if record.ip_rules is not None and not record.ip_rules.allows(facts.client_ip):
            raise IpNotAllowed()
        if record.domain_rules is not None and not record.domain_rules.allows_origin(
            facts.origin, facts.referer
        ):
            raise OriginNotAllowed()
        if record.certificate_fingerprints:
            self._check_certificate(record, facts)
        for scope in required_scopes:
            if scope not in record.scopes:
                raise ScopeMissing(required=scope)
        signed = credentials.secret is None or record.require_signature
        if signed and credentials.secret is not None:  # a bare id's was checked first
            self._check_signature(record, facts)
        return signed

    def _principal(self, record: KeyRecord) -> KeyPrincipal:
        kept = self._principals.get(record.id)
        if kept is not None and kept[0] is record:
            return kept[1]
        principal = KeyPrincipal(
            key_id=record.id,
            project_id=record.project_id,
            environment=record.environment,
            scopes=record.scopes,
            is_root=record.is_root,
        )
        if len(self._principals) >= _PRINCIPALS_KEPT:
            del self._principals[next(iter(self._principals))]  # the oldest
        self._principals[record.id] = (record, principal)
        return principal

    async def _consume(self, record: KeyRecord, facts: RequestFacts, signed: bool) -> KeyPrincipal:
        """TOTP, then what the request spends: its rate limit, signature and TOTP step."""
        step = None if record.totp_key is None else await self._check_totp(record, facts)

        # Everything below consumes state: only requests that passed every check get here,
        # and one call spends it all. An over-limit request is refused before it spends
        # its signature or TOTP code, so the client can retry the very same request after
        # Retry-After. Once means once across every key sharing the secret (a rotation
        # copies it to the successor): spent signatures and TOTP steps are keyed by the
        # secret, not the key.
        tokens: tuple[tuple[str, float], ...] = ()
        if signed:
            tokens = ((record.signature_tokens + (facts.signature or ""), SIGNATURE_TTL),)
        if step is not None and record.totp_key is not None:
            tokens = (*tokens, step_token(record.totp_key, step))
        rule = record.rate_limit
        if rule is None:
            spent = await self._ledger.spend(tokens)
        else:
            spent = await self._ledger.spend(
                tokens, record.rate_bucket, rule.limit, rule.period_seconds
            )
        decision = spent.rate
        if spent.refused is not None:
            if spent.refused == "replayed":
                if signed and spent.replayed == 0:
                    raise SignatureReplayed()
                await self._totp.refuse_replay(record.id)
            if rule is not None and decision is not None:
                wait = decision.reset_seconds
                raise RateLimited(limit=rule.limit, retry_after=wait, reset=wait)
        if decision is None:
            return self._principal(record)
        ratelimit = RateLimitStatus(decision.limit, decision.remaining, decision.reset_seconds)
        # Positional: a frozen dataclass costs twice as much with keywords (per request).
        return KeyPrincipal(
            record.id,
            record.project_id,
            record.environment,
            record.scopes,
            record.is_root,
            ratelimit,
        )

    def _check_secret(self, record: KeyRecord | None, credentials: Credentials) -> KeyRecord:
        if credentials.secret is None:
            # A bare id is only a credential for signed requests (checked later); without a
            # signing secret on the key it proves nothing.
            if record is None or record.signing_secret is None:
                raise InvalidKey()
            return record
        # Unknown ids do the same hashing work as wrong secrets (no timing oracle).
        if not self._secrets.matches(
            credentials.secret, None if record is None else record.secret_hash
        ):
            raise InvalidKey()
        if record is None:  # unreachable: matches() is False for unknown ids
            raise InvalidKey()
        return record

    def _check_lifecycle(self, record: KeyRecord) -> None:
        if record.revoked:
            raise KeyRevoked()
        if record.quarantined:
            raise KeyQuarantined()
        if has_passed(record.expires_at, self._clock.now()):
            raise KeyExpired()

    def _check_certificate(self, record: KeyRecord, facts: RequestFacts) -> None:
        der = facts.certificate_der()
        if der is None:
            raise ClientCertificateRequired()
        # Pinned by the hex SHA-256 of the DER (CONTRACT §4): another key's certificate,
        # or any unregistered one, does not match.
        fingerprint = hashlib.sha256(der).hexdigest()
        if fingerprint not in record.certificate_fingerprints:
            raise ClientCertificateInvalid()
        validity = record.certificate_validity.get(fingerprint)
        if validity is None:
            try:
                info = info_from_der(der)
            except ValueError:
                raise ClientCertificateInvalid() from None
            validity = (info.not_before.timestamp(), info.not_after.timestamp())
        # RFC 5280 §4.1.2.5: valid from notBefore to notAfter, both inclusive.
        if not validity[0] <= self._clock.now() <= validity[1]:
            raise ClientCertificateInvalid()

    def _check_signature(self, record: KeyRecord, facts: RequestFacts) -> None:
        if record.signing_secret is None:  # require_signature without a secret: refuse
            raise SignatureInvalid()
        verify_signed_request(
            record.signing_secret,
            facts.method,
            facts.path_with_query,
            facts.body or b"",
            facts.timestamp,
            facts.signature,
            now=self._clock.now(),
        )

    async def _check_totp(self, record: KeyRecord, facts: RequestFacts) -> int:
        if facts.totp is None:
            raise TotpRequired()
        if record.totp_key is None:  # unreachable: only called for TOTP keys
            raise TotpRequired()
        return await self._totp.match(record.id, record.totp_key, facts.totp)
