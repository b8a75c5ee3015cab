"""The per-key checks in the policy engine: order, state use, compiled restrictions."""

from __future__ import annotations

import os

import pytest

from keyguard.clock import FrozenClock
from keyguard.crypto.hashing import SecretHasher
from keyguard.crypto.keys import KeyIdTagger
from keyguard.crypto.request_signing import compute_signature, new_signing_secret
from keyguard.crypto.totp import new_totp_secret, totp_code
from keyguard.engine import ipallow
from keyguard.engine.cache import KeyCache
from keyguard.engine.facts import Credentials, RequestFacts
from keyguard.engine.records import KeyRecord, RateLimitRule
from keyguard.engine.verifier import SIGNATURE_TTL, PolicyEngine
from keyguard.errors import (
    HttpsRequired,
    IpNotAllowed,
    RateLimited,
    ScopeMissing,
    SignatureReplayed,
    TotpInvalid,
    TotpRequired,
)
from keyguard.state.memory import memory_state
from keyguard.state.protocols import RateDecision, StateStores

HASHER = SecretHasher(os.urandom(32))
NOW = 1_700_000_015.0


class CountingLimiter:
    def __init__(self, inner) -> None:
        self.inner = inner
        self.hits: list[str] = []

    async def hit(self, bucket: str, limit: int, period_seconds: int) -> RateDecision:
        self.hits.append(bucket)
        return await self.inner.hit(bucket, limit, period_seconds)

    async def blocked(self, bucket: str, limit: int, period_seconds: int) -> int:
        return await self.inner.blocked(bucket, limit, period_seconds)

    async def peek(self, bucket: str, limit: int, period_seconds: int) -> RateDecision:
        return await self.inner.peek(bucket, limit, period_seconds)

    async def reset(self, bucket: str, limit: int, period_seconds: int) -> None:
        await self.inner.reset(bucket, limit, period_seconds)


class CountingReplay:
    def __init__(self, inner) -> None:
        self.inner = inner
        self.claims: list[tuple[str, float]] = []

    async def first_use(self, token: str, ttl_seconds: float) -> bool:
        self.claims.append((token, ttl_seconds))
        return await self.inner.first_use(token, ttl_seconds)


class Setup:
    def __init__(self) -> None:
        self.clock = FrozenClock(NOW)
        self.records: dict[str, KeyRecord] = {}
        base = memory_state(self.clock)
        self.limiter = CountingLimiter(base.rate_limiter)
        self.replay = CountingReplay(base.replay_guard)
        state = StateStores(self.limiter, self.replay, base.cache_bus, base.vault)

        async def load(key_id: str) -> KeyRecord | None:
            return self.records.get(key_id)

        self.key_ids = KeyIdTagger(os.urandom(32))
        self.engine = PolicyEngine(
            KeyCache(load, self.clock), HASHER, self.clock, state=state, key_ids=self.key_ids
        )

    def add(self, **fields) -> tuple[str, str]:
        issued = self.key_ids.issue("aptr", "live")
        self.records[issued.id] = KeyRecord(
            id=issued.id,
            project_id="p",
            environment="live",
            secret_hash=HASHER.hash(issued.secret),
            scopes=frozenset(fields.pop("scopes", ())),
            **fields,
        )
        return issued.id, issued.secret


@pytest.fixture
def s() -> Setup:
    return Setup()


def signed(s: Setup, key_id: str, secret: str, body: bytes = b"{}") -> RequestFacts:
    ts = str(int(s.clock.now()))
    return RequestFacts(
        method="POST",
        path_with_query="/x",
        body=body,
        timestamp=ts,
        signature=compute_signature(secret, "POST", "/x", body, ts),
        client_ip="192.0.2.1",
    )


async def test_a_refusal_by_an_earlier_check_consumes_no_state(s: Setup) -> None:
    signing = new_signing_secret()
    totp = new_totp_secret()
    key_id, _ = s.add(
        ip_allowlist=("198.51.100.0/24",),
        signing_secret=signing,
        require_signature=True,
        totp_secret=totp,
        rate_limit=RateLimitRule(1, 60),
        scopes=("a",),
    )
    creds = Credentials(key_id, None)
    facts = signed(s, key_id, signing)
    facts.totp = totp_code(totp, NOW)
    for refused, error in [
        (RequestFacts(**{**_fields(facts), "https": False}), HttpsRequired),
        (facts, IpNotAllowed),  # 192.0.2.1 is not in the list
    ]:
        with pytest.raises(error):
            await s.engine.verify(creds, refused)
    facts.client_ip = "198.51.100.1"
    with pytest.raises(ScopeMissing):
        await s.engine.verify(creds, facts, required_scopes=["b"])
    assert s.replay.claims == []
    assert s.limiter.hits == []
    principal = await s.engine.verify(creds, facts, required_scopes=["a"])
    assert principal.ratelimit is not None
    assert principal.ratelimit.remaining == 0
    # Signature first, then the TOTP step, then the rate limit: in that order.
    assert [t.split(":")[0] for t, _ in s.replay.claims] == ["sig", "totp"]
    assert s.limiter.hits == [f"rl:{key_id}"]


def _fields(facts: RequestFacts) -> dict:
    return {name: getattr(facts, name) for name in RequestFacts.__slots__}


async def test_signatures_are_remembered_beyond_the_whole_window(s: Setup) -> None:
    signing = new_signing_secret()
    key_id, _ = s.add(signing_secret=signing, require_signature=True)
    facts = signed(s, key_id, signing)
    await s.engine.verify(Credentials(key_id, None), facts)
    assert s.replay.claims[0][1] >= 2 * 300 == SIGNATURE_TTL
    s.clock.advance(299)  # still inside the window: a replay must still be caught
    with pytest.raises(SignatureReplayed):
        await s.engine.verify(Credentials(key_id, None), facts)


async def test_a_totp_code_is_accepted_once_across_keys_sharing_the_secret(s: Setup) -> None:
    totp = new_totp_secret()
    a = s.add(totp_secret=totp)
    b = s.add(totp_secret=totp)  # same secret on another key (a rotated pair): same steps
    other_secret = new_totp_secret()
    other = s.add(totp_secret=other_secret)
    code = totp_code(totp, NOW)
    await s.engine.verify(Credentials(*a), RequestFacts(totp=code))
    with pytest.raises(TotpInvalid):
        await s.engine.verify(Credentials(*b), RequestFacts(totp=code))
    with pytest.raises(TotpInvalid):
        await s.engine.verify(Credentials(*a), RequestFacts(totp=code))
    # A key with its own secret keeps its own steps.
    await s.engine.verify(Credentials(*other), RequestFacts(totp=totp_code(other_secret, NOW)))
    with pytest.raises(TotpRequired):
        await s.engine.verify(Credentials(*a), RequestFacts())


async def test_totp_failures_are_throttled_per_key(s: Setup) -> None:
    totp = new_totp_secret()
    key = s.add(totp_secret=totp)
    window = {totp_code(totp, NOW + 30 * step) for step in (-1, 0, 1)}
    bad = next(c for c in ("000000", "111111", "222222", "333333") if c not in window)
    for _ in range(5):
        with pytest.raises(TotpInvalid):
            await s.engine.verify(Credentials(*key), RequestFacts(totp=bad))
    with pytest.raises(RateLimited) as refused:
        await s.engine.verify(Credentials(*key), RequestFacts(totp=totp_code(totp, NOW)))
    assert int(refused.value.headers["Retry-After"]) >= 1
    s.clock.advance(120)
    await s.engine.verify(Credentials(*key), RequestFacts(totp=totp_code(totp, s.clock.now())))


async def test_allowlists_are_compiled_once_per_cached_record(s: Setup, monkeypatch) -> None:
    key = s.add(ip_allowlist=tuple(f"10.{i // 256}.{i % 256}.0/24" for i in range(10_000)))
    await s.engine.verify(Credentials(*key), RequestFacts(client_ip="10.0.1.9"))
    compiled = 0
    original = ipallow.IpAllowlist.__init__

    def counting(self, entries=()):
        nonlocal compiled
        compiled += 1
        original(self, entries)

    monkeypatch.setattr(ipallow.IpAllowlist, "__init__", counting)
    for _ in range(50):
        await s.engine.verify(Credentials(*key), RequestFacts(client_ip="10.0.1.9"))
    with pytest.raises(IpNotAllowed):
        await s.engine.verify(Credentials(*key), RequestFacts(client_ip="11.0.0.1"))
    assert compiled == 0


def test_an_invalid_stored_entry_fails_closed() -> None:
    with pytest.raises(ValueError, match="not an IP address"):
        KeyRecord(
            id="x",
            project_id="p",
            environment="live",
            secret_hash=b"",
            scopes=frozenset(),
            ip_allowlist=("10.0.0.0/33",),
        )


def test_records_never_show_their_secrets() -> None:
    record = KeyRecord(
        id="x",
        project_id="p",
        environment="live",
        secret_hash=b"hash",
        scopes=frozenset(),
        totp_secret=new_totp_secret(),
        signing_secret="kgsig_secret",
    )
    assert "secret" not in repr(record)
    assert repr(record.totp_key) == "TotpKey(<redacted>)"


async def test_a_request_refused_for_its_rate_limit_keeps_its_totp_code(s: Setup) -> None:
    totp = new_totp_secret()
    key = Credentials(*s.add(totp_secret=totp, rate_limit=RateLimitRule(1, 20)))
    await s.engine.verify(key, RequestFacts(totp=totp_code(totp, NOW)))
    retry = RequestFacts(totp=totp_code(totp, NOW + 30))  # the next step's code (±1 step)
    with pytest.raises(RateLimited):
        await s.engine.verify(key, retry)
    assert [t for t, _ in s.replay.claims if t.startswith("totp")] == [
        t for t, _ in s.replay.claims[:1]
    ]
    s.clock.advance(40)  # both windows have moved on: the very same request now passes
    await s.engine.verify(key, RequestFacts(totp=retry.totp))
