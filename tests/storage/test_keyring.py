"""The keyring's root secret (issue 10): a database from before the keyring keeps the
master key it was created with as its root, whichever key is current at the upgrade."""

from __future__ import annotations

import base64

import pytest
from pydantic import SecretStr
from sqlalchemy import delete

from keyguard.accounts.service import init_admin
from keyguard.audit.service import verify_chain
from keyguard.crypto.keys import parse_key
from keyguard.runtime import Runtime
from keyguard.storage.keyring import KeyringEntry, KeyringError

FIRST = base64.urlsafe_b64encode(b"\x01" * 32).decode()
SECOND = base64.urlsafe_b64encode(b"\x02" * 32).decode()
PASSWORD = "a long enough password"


def with_keys(settings, master: str, previous: str | None = None):
    return settings.model_copy(
        update={
            "master_key": SecretStr(master),
            "previous_master_keys": None if previous is None else SecretStr(previous),
        }
    )


async def legacy_database(settings, monkeypatch) -> str:
    """A database as the version before the keyring left it: everything derived from the
    master key FIRST, and no keyring row. Returns its root key."""
    import keyguard.runtime as runtime_module

    async def never_fresh(_sessions) -> bool:
        return False

    monkeypatch.setattr(runtime_module, "_is_fresh", never_fresh)  # root = the master key
    runtime = await Runtime.start(with_keys(settings, FIRST))
    try:
        made = await init_admin(runtime, email="ops@example.com", password=PASSWORD)
        async with runtime.transaction() as db:
            await db.execute(delete(KeyringEntry))
    finally:
        await runtime.close()
    monkeypatch.undo()
    return made.root_key.issued.key


async def works(runtime: Runtime, root_key: str) -> bool:
    parsed = parse_key(root_key)
    record = await runtime.cache.get(parsed.id)
    async with runtime.sessions() as session:
        intact = await verify_chain(session) == []
    return (
        record is not None and runtime.hasher.matches(parsed.secret, record.secret_hash) and intact
    )


async def test_upgrading_straight_into_a_rotation_keeps_the_old_root(settings, monkeypatch):
    """The review's case: the first start on the new version already has the new master
    key current and the old one previous. The root must be the old one."""
    root_key = await legacy_database(settings, monkeypatch)
    runtime = await Runtime.start(with_keys(settings, SECOND, previous=FIRST))
    try:
        assert await works(runtime, root_key)
    finally:
        await runtime.close()


async def test_a_legacy_database_without_its_key_refuses_to_start(settings, monkeypatch):
    await legacy_database(settings, monkeypatch)
    with pytest.raises(KeyringError, match="created with"):
        await Runtime.start(with_keys(settings, SECOND))


async def test_a_wrong_master_key_is_a_plain_configuration_error(settings):
    runtime = await Runtime.start(with_keys(settings, FIRST))
    await init_admin(runtime, email="ops@example.com", password=PASSWORD)
    await runtime.close()
    with pytest.raises(KeyringError, match="opens this database's keyring"):
        await Runtime.start(with_keys(settings, SECOND))


async def test_a_fresh_database_gets_a_random_root_not_the_master_key(settings):
    from keyguard.crypto.hashing import derive_subkey

    runtime = await Runtime.start(with_keys(settings, FIRST))
    try:
        assert runtime.link_key != derive_subkey(b"\x01" * 32, "keyguard/download-links")
    finally:
        await runtime.close()
