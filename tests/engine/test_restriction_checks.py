"""The per-key checks in the policy engine: order, state use, compiled restrictions."""

from __future__ import annotations

import os
from dataclasses import replace

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
from keyguard.state.protocols import RequestLedger, Spent

HASHER = SecretHasher(os.urandom(32))
NOW = 1_700_000_015.0


class CountingLedger:
    """The real in-process ledger, recording each spend and what it decided."""

    def __init__(self, inner: RequestLedger) -> None:
        self.inner = inner
        self.spends: list[tuple[tuple[tuple[str, float], ...], str | None, Spent]] = []

    async def spend(
        self,
        tokens: tuple[tuple[str, float], ...],
        bucket: str | None = None,
        limit: int = 0,
        period_seconds: int = 0,
    ) -> Spent:
        spent = await self.inner.spend(tokens, bucket, limit, period_seconds)
        self.spends.append((tokens, bucket, spent))
        return spent


class Setup:
    def __init__(self) -> None:
        self.clock = FrozenClock(NOW)
        self.records: dict[str, KeyRecord] = {}
        base = memory_state(self.clock)
        self.ledger = CountingLedger(base.ledger)
        state = replace(base, ledger=self.ledger)

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
    assert s.ledger.spends == []
    principal = await s.engine.verify(creds, facts, required_scopes=["a"])
    assert principal.ratelimit is not None
    assert principal.ratelimit.remaining == 0
    # One spend: the signature, the TOTP step and one request of the key's rate limit.
    [(tokens, bucket, spent)] = s.ledger.spends
    assert [t.split(":")[0] for t, _ in tokens] == ["sig", "totp"]
    assert bucket == f"rl:{key_id}"
    assert spent.refused is None


def _fields(facts: RequestFacts) -> dict:
    return {name: getattr(facts, name) for name in RequestFacts.__slots__}


async def test_signatures_are_remembered_beyond_the_whole_window(s: Setup) -> None:
    signing = new_signing_secret()
    key_id, _ = s.add(signing_secret=signing, require_signature=True)
    facts = signed(s, key_id, signing)
    await s.engine.verify(Credentials(key_id, None), facts)
    assert s.ledger.spends[0][0][0][1] >= 2 * 300 == SIGNATURE_TTL
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
    assert [spent.refused for _, _, spent in s.ledger.spends] == [None, "rate"]
    s.clock.advance(40)  # both windows have moved on: the very same request now passes
    await s.engine.verify(key, RequestFacts(totp=retry.totp))


async def test_a_replayed_totp_code_spends_nothing_else(s: Setup) -> None:
    signing, totp = new_signing_secret(), new_totp_secret()
    key_id, _ = s.add(signing_secret=signing, require_signature=True, totp_secret=totp)
    first = signed(s, key_id, signing)
    first.totp = totp_code(totp, NOW)
    await s.engine.verify(Credentials(key_id, None), first)
    s.clock.advance(1)
    second = signed(s, key_id, signing)  # a fresh signature with the spent code
    second.totp = first.totp
    with pytest.raises(TotpInvalid):
        await s.engine.verify(Credentials(key_id, None), second)
    # Its signature was not spent by the refusal: with the next code it goes through.
    second.totp = totp_code(totp, NOW + 30)
    await s.engine.verify(Credentials(key_id, None), second)


async def test_a_replayed_signature_spends_neither_the_totp_step_nor_the_limit(s: Setup) -> None:
    signing, totp = new_signing_secret(), new_totp_secret()
    key_id, _ = s.add(
        signing_secret=signing,
        require_signature=True,
        totp_secret=totp,
        rate_limit=RateLimitRule(2, 60),
    )
    facts = signed(s, key_id, signing)
    facts.totp = totp_code(totp, NOW)
    await s.engine.verify(Credentials(key_id, None), facts)
    replayed = signed(s, key_id, signing)
    replayed.totp = totp_code(totp, NOW + 30)
    replayed.signature = facts.signature
    with pytest.raises(SignatureReplayed):
        await s.engine.verify(Credentials(key_id, None), replayed)
    s.clock.advance(1)
    fresh = signed(s, key_id, signing)
    fresh.totp = replayed.totp  # not spent by the replay
    principal = await s.engine.verify(Credentials(key_id, None), fresh)
    assert principal.ratelimit is not None
    assert principal.ratelimit.remaining == 0  # the replay counted nothing
