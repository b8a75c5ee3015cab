"""The policy engine's key checks, against an in-memory loader (no HTTP, no SQL)."""

from __future__ import annotations

import os

import pytest

from keyguard.clock import FrozenClock
from keyguard.crypto.hashing import SecretHasher
from keyguard.crypto.keys import KeyIdTagger, new_secret_for
from keyguard.engine.cache import KeyCache
from keyguard.engine.facts import Credentials, RequestFacts
from keyguard.engine.records import KeyRecord
from keyguard.engine.verifier import PolicyEngine
from keyguard.errors import InvalidKey, KeyExpired, KeyRevoked, RootKeyRequired, ScopeMissing
from keyguard.state.memory import memory_state

HASHER = SecretHasher(os.urandom(32))
KEY_IDS = KeyIdTagger(os.urandom(32))


def issue_key(prefix: str, environment: str):
    return KEY_IDS.issue(prefix, environment)


class Store:
    def __init__(self) -> None:
        self.records: dict[str, KeyRecord] = {}
        self.loads = 0

    async def __call__(self, key_id: str) -> KeyRecord | None:
        self.loads += 1
        return self.records.get(key_id)


@pytest.fixture
def clock():
    return FrozenClock(1_700_000_000)


@pytest.fixture
def store():
    return Store()


@pytest.fixture
def engine(store, clock):
    return PolicyEngine(
        KeyCache(store, clock), HASHER, clock, state=memory_state(clock), key_ids=KEY_IDS
    )


def add(store: Store, **fields) -> tuple[str, str]:
    issued = issue_key("aptr", "live")
    store.records[issued.id] = KeyRecord(
        id=issued.id,
        project_id="proj_1",
        environment="live",
        secret_hash=HASHER.hash(issued.secret),
        scopes=frozenset(fields.pop("scopes", ())),
        **fields,
    )
    return issued.id, issued.secret


async def test_valid_key_yields_its_principal(engine, store):
    key_id, secret = add(store, scopes={"a"})
    principal = await engine.verify(Credentials(key_id, secret), RequestFacts())
    assert (principal.key_id, principal.project_id, principal.scopes) == (key_id, "proj_1", {"a"})


async def test_wrong_secret_and_unknown_id_give_the_same_error(engine, store):
    key_id, _ = add(store)
    other = issue_key("aptr", "live")
    with pytest.raises(InvalidKey) as wrong:
        await engine.verify(Credentials(key_id, other.secret), RequestFacts())
    with pytest.raises(InvalidKey) as unknown:
        await engine.verify(Credentials(other.id, other.secret), RequestFacts())
    assert wrong.value.to_problem() == unknown.value.to_problem()


async def test_forged_ids_are_refused_without_a_look_up(engine, store):
    """Issue 10, defect 7: the public checksum is easy to get right; the id's keyed tag is
    not, so a forged id never reaches the cache or the loader (its database query)."""
    key_id, secret = add(store)
    wrong_tag = key_id[:-1] + ("A" if key_id[-1] != "A" else "B")
    other_subkey = KeyIdTagger(os.urandom(32)).issue("aptr", "live")
    untagged = "aptr_live_" + "Q" * 16  # the old shape (no tag), never issued
    for forged in (wrong_tag, other_subkey.id, untagged):
        store.records[forged] = store.records[key_id]  # even a stored one is not looked up
        for credentials in (
            Credentials(forged, new_secret_for(forged)),
            Credentials(forged, secret),
            Credentials(forged, None),  # a signed request's bare id
        ):
            with pytest.raises(InvalidKey):
                await engine.verify(credentials, RequestFacts())
            assert await engine.lookup(forged) is None
    assert store.loads == 0


async def test_ids_issued_before_the_tag_are_looked_up_only_when_known(store, clock):
    legacy = "aptr_live_" + "0123456789abcdef"
    stranger = "aptr_live_" + "fedcba9876543210"
    secret = new_secret_for(legacy)
    engine = PolicyEngine(
        KeyCache(store, clock),
        HASHER,
        clock,
        state=memory_state(clock),
        key_ids=KeyIdTagger(os.urandom(32), legacy_ids=[legacy]),
    )
    store.records[legacy] = KeyRecord(
        id=legacy,
        project_id="proj_1",
        environment="live",
        secret_hash=HASHER.hash(secret),
        scopes=frozenset(),
    )
    principal = await engine.verify(Credentials(legacy, secret), RequestFacts())
    assert principal.key_id == legacy
    with pytest.raises(InvalidKey):
        await engine.verify(Credentials(stranger, new_secret_for(stranger)), RequestFacts())
    assert store.loads == 1


async def test_revoked_and_expired_keys_are_refused(engine, store, clock):
    revoked = add(store, revoked=True)
    expiring = add(store, expires_at=clock.now() + 10)
    with pytest.raises(KeyRevoked):
        await engine.verify(Credentials(*revoked), RequestFacts())
    await engine.verify(Credentials(*expiring), RequestFacts())
    clock.advance(10)
    with pytest.raises(KeyExpired):
        await engine.verify(Credentials(*expiring), RequestFacts())


async def test_revoked_key_with_wrong_secret_says_nothing_about_revocation(engine, store):
    key_id, _ = add(store, revoked=True)
    with pytest.raises(InvalidKey):
        await engine.verify(Credentials(key_id, issue_key("aptr", "live").secret), RequestFacts())


async def test_missing_scope_is_refused(engine, store):
    creds = Credentials(*add(store, scopes={"read"}))
    await engine.verify(creds, RequestFacts(), required_scopes=["read"])
    with pytest.raises(ScopeMissing):
        await engine.verify(creds, RequestFacts(), required_scopes=["read", "write"])


async def test_project_and_root_keys_do_not_stand_in_for_each_other(engine, store):
    project = Credentials(*add(store))
    root = Credentials(*add(store, is_root=True))
    with pytest.raises(RootKeyRequired):
        await engine.verify(project, RequestFacts(), root=True)
    with pytest.raises(InvalidKey):
        await engine.verify(root, RequestFacts())
    await engine.verify(root, RequestFacts(), root=True)


async def test_bare_id_without_signing_secret_is_refused(engine, store):
    key_id, _ = add(store)
    with pytest.raises(InvalidKey):
        await engine.verify(Credentials(key_id, None), RequestFacts())


async def test_cache_serves_repeat_verifications_without_loading(engine, store):
    creds = Credentials(*add(store))
    for _ in range(5):
        await engine.verify(creds, RequestFacts())
    assert store.loads == 1


async def test_invalidation_makes_the_next_request_see_the_change(engine, store):
    key_id, secret = add(store)
    await engine.verify(Credentials(key_id, secret), RequestFacts())
    store.records[key_id] = KeyRecord(
        **{
            f: getattr(store.records[key_id], f)
            for f in ("id", "project_id", "environment", "secret_hash", "scopes")
        },
        revoked=True,
    )
    engine.cache.invalidate(key_id)
    with pytest.raises(KeyRevoked):
        await engine.verify(Credentials(key_id, secret), RequestFacts())


ISSUED_STORE = Store()
ISSUED_ID, ISSUED_SECRET = add(ISSUED_STORE)
ISSUED_KEY = ISSUED_ID + ISSUED_SECRET


def _mutations():
    from hypothesis import strategies as st

    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-"
    positions = st.integers(0, len(ISSUED_KEY) - 1)
    single = st.tuples(positions, st.sampled_from(alphabet)).map(
        lambda pc: ISSUED_KEY[: pc[0]] + pc[1] + ISSUED_KEY[pc[0] + 1 :]
    )
    return st.one_of(single, st.text(max_size=100), st.just(ISSUED_KEY[:-1]))


def test_no_generated_key_string_other_than_the_issued_one_is_accepted():
    """Property: through credential parsing and the engine, only the issued key passes."""
    import asyncio

    from hypothesis import given, settings

    from keyguard.engine.credentials import extract_credentials
    from keyguard.errors import KeyguardError

    clock = FrozenClock()
    engine = PolicyEngine(
        KeyCache(ISSUED_STORE, clock), HASHER, clock, state=memory_state(clock), key_ids=KEY_IDS
    )

    async def accepted(text: str) -> bool:
        try:
            creds = extract_credentials({"authorization": f"Bearer {text}"})
            if creds is None:
                return False
            await engine.verify(creds, RequestFacts())
        except KeyguardError:
            return False
        return True

    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(accepted(ISSUED_KEY))

        @settings(max_examples=1500, deadline=None)
        @given(_mutations())
        def check(text: str) -> None:
            if text.strip() != ISSUED_KEY:
                assert not loop.run_until_complete(accepted(text))

        check()
    finally:
        loop.close()


async def test_a_key_in_the_cache_is_not_tag_checked_again(store, clock):
    """The tag is checked before a look-up; a cached key was admitted when it was loaded,
    so the hot path (a cache hit) pays no HMAC for it."""

    class Counting(KeyIdTagger):
        __slots__ = ("checks",)

        def admits(self, key_id: str) -> bool:
            self.checks += 1
            return super().admits(key_id)

    ids = Counting(os.urandom(32))
    ids.checks = 0
    engine = PolicyEngine(
        KeyCache(store, clock), HASHER, clock, state=memory_state(clock), key_ids=ids
    )
    issued = ids.issue("aptr", "live")
    store.records[issued.id] = KeyRecord(
        id=issued.id,
        project_id="proj_1",
        environment="live",
        secret_hash=HASHER.hash(issued.secret),
        scopes=frozenset(),
    )
    for _ in range(3):
        await engine.verify(Credentials(issued.id, issued.secret), RequestFacts())
    assert (ids.checks, store.loads) == (1, 1)
