"""Master-key rotation's re-sealing (issue 10): every sealed column is covered, values move
to the new key, a crash resumes, a concurrent change is never overwritten, a value no key
opens is reported and left alone; nothing derived from the keyring changes."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from helpers import create_key
from keyguard.app import create_asgi
from keyguard.audit import checkpoints
from keyguard.audit.service import verify_chain
from keyguard.crypto.envelope import Envelope, key_id_for
from keyguard.keys.models import ApiKey
from keyguard.keys.repository import load_key_record
from keyguard.projects.models import Project
from keyguard.runtime import Runtime
from keyguard.storage.reseal import reseal, sealed_by_key
from keyguard.tables import SEALED_COLUMNS, metadata

NEW = base64.urlsafe_b64encode(bytes(range(32))).decode()


def test_every_sealed_column_is_registered_for_rotation() -> None:
    """A column added later with a sealed value cannot be forgotten by the rotation."""
    sealed = {
        f"{table.name}.{column.name}"
        for table in metadata.tables.values()
        for column in table.columns
        if "sealed" in column.name
    }
    assert sealed == {c.name for c in SEALED_COLUMNS}


async def populated(runtime, client, root_headers, project_id) -> dict[str, str]:
    key = await create_key(client, root_headers, project_id)
    made = await client.post(f"/v1/keys/{key['id']}/signing-secret", headers=root_headers)
    assert made.status_code in (200, 201), made.text
    totp = await client.post(f"/v1/keys/{key['id']}/totp", headers=root_headers)
    assert totp.status_code in (200, 201), totp.text
    await checkpoints.sign_current(runtime)  # the audit signing key
    return key


async def restarted(runtime: Runtime, **settings: str | None) -> Runtime:
    """The same database, started again with other master keys."""
    await runtime.close()
    update = {k: None if v is None else SecretStr(v) for k, v in settings.items()}
    return await Runtime.start(runtime.settings.model_copy(update=update), clock=runtime.clock)


def old_master(runtime: Runtime) -> str:
    if runtime.settings.master_key is not None:
        return runtime.settings.master_key.get_secret_value()
    return (runtime.settings.data_dir / "master.key").read_text().strip()


async def test_every_secret_moves_to_the_new_key_and_still_works_without_the_old(
    runtime, client, root_headers, project_id
):
    key = await populated(runtime, client, root_headers, project_id)
    old = old_master(runtime)
    rotated = await restarted(runtime, master_key=NEW, previous_master_keys=old)
    try:
        before = await sealed_by_key(rotated.sessions, SEALED_COLUMNS)
        assert before[key_id_for(base64.urlsafe_b64decode(old))] >= 5
        report = await reseal(rotated.transaction, rotated.envelope, SEALED_COLUMNS, batch=2)
        assert report.unopenable == []
        assert report.resealed == sum(before.values())
        after = await sealed_by_key(rotated.sessions, SEALED_COLUMNS)
        assert set(after) == {rotated.envelope.current_kid}
        again = await reseal(rotated.transaction, rotated.envelope, SEALED_COLUMNS)
        assert again.resealed == 0, "resuming a finished rotation changes nothing"
    finally:
        await rotated.close()
    # Without the old key: the root key and the project key still verify (the hash pepper
    # comes from the keyring), secrets open, checkpoints sign.
    alone = await restarted(rotated, previous_master_keys=None)
    try:
        transport = httpx.ASGITransport(app=create_asgi(alone), client=("203.0.113.7", 1))
        async with httpx.AsyncClient(transport=transport, base_url="https://t") as c:
            r = await c.get(f"/v1/keys/{key['id']}", headers=root_headers)  # the pepper held
            assert r.status_code == 200, r.text
        async with alone.sessions() as session:
            record = await load_key_record(session, alone.envelope, key["id"])
        assert record is not None
        assert record.signing_secret
        assert record.totp_secret is None  # not confirmed, so not loaded; but it opens:
        async with alone.sessions() as session:
            row = await session.get(ApiKey, key["id"])
        assert alone.envelope.open(row.totp_secret_sealed, context=f"totp:{row.id}")
        assert (await checkpoints.sign_current(alone)).note
        async with alone.sessions() as session:
            assert await verify_chain(session) == []
    finally:
        await alone.close()


async def test_a_crash_mid_rotation_resumes_where_it_stopped(
    runtime, client, root_headers, project_id
):
    await populated(runtime, client, root_headers, project_id)
    rotated = await restarted(runtime, master_key=NEW, previous_master_keys=old_master(runtime))
    try:
        total = sum((await sealed_by_key(rotated.sessions, SEALED_COLUMNS)).values())

        def crash(column: str, done: int) -> None:
            raise KeyboardInterrupt  # after the first committed batch

        with pytest.raises(KeyboardInterrupt):
            await reseal(
                rotated.transaction, rotated.envelope, SEALED_COLUMNS, batch=1, progress=crash
            )
        halfway = await sealed_by_key(rotated.sessions, SEALED_COLUMNS)
        assert halfway[rotated.envelope.current_kid] == 1
        report = await reseal(rotated.transaction, rotated.envelope, SEALED_COLUMNS, batch=1)
        assert report.resealed == total - 1
        assert set(await sealed_by_key(rotated.sessions, SEALED_COLUMNS)) == {
            rotated.envelope.current_kid
        }
    finally:
        await rotated.close()


class RacingSession:
    """The job's session, with another writer committing just before its first write:
    the race a running server makes when it changes a secret mid-rotation."""

    def __init__(self, inner: AsyncSession, race: Callable[[], Awaitable[None]]) -> None:
        self._inner, self._race = inner, race

    async def execute(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        if self._race is not None and getattr(statement, "is_dml", False):
            race, self._race = self._race, None
            await race()
        return await self._inner.execute(statement, *args, **kwargs)


def racing(runtime: Runtime, race: Callable[[], Awaitable[None]]) -> Any:
    @asynccontextmanager
    async def transaction() -> AsyncIterator[Any]:
        async with runtime.transaction() as session:
            yield RacingSession(session, race)

    return transaction


async def test_a_secret_changed_during_the_rotation_is_never_overwritten(runtime, project_id):
    if runtime.settings.database_url is None:
        pytest.skip("a second writer inside the job's transaction needs PostgreSQL")
    rotated = await restarted(runtime, master_key=NEW, previous_master_keys=old_master(runtime))
    try:
        context = f"webhook:{project_id}"
        changed = rotated.envelope.seal("whsec_changed_meanwhile", context)

        async def a_server_changes_the_secret() -> None:
            async with rotated.sessions.begin() as other:
                await other.execute(
                    update(Project)
                    .where(Project.id == project_id)
                    .values(webhook_secret_sealed=changed)
                )

        only_webhooks = [c for c in SEALED_COLUMNS if c.name == "projects.webhook_secret_sealed"]
        report = await reseal(
            racing(rotated, a_server_changes_the_secret), rotated.envelope, only_webhooks
        )
        assert report.resealed == 0, "the value it read was gone: nothing was written"
        async with rotated.sessions() as session:
            project = await session.get(Project, project_id)
        assert project.webhook_secret_sealed == changed
        assert rotated.envelope.open(changed, context) == "whsec_changed_meanwhile"
    finally:
        await rotated.close()


async def test_a_value_no_key_opens_is_reported_and_left_alone(runtime, project_id):
    stranger = Envelope(bytes(32))
    foreign = stranger.seal("whsec_foreign", f"webhook:{project_id}")
    async with runtime.transaction() as session:
        await session.execute(
            update(Project).where(Project.id == project_id).values(webhook_secret_sealed=foreign)
        )
    rotated = await restarted(runtime, master_key=NEW, previous_master_keys=old_master(runtime))
    try:
        report = await reseal(rotated.transaction, rotated.envelope, SEALED_COLUMNS)
        assert report.unopenable == [f"projects.webhook_secret_sealed:{project_id}"]
        assert "whsec" not in repr(report)
        async with rotated.sessions() as session:
            assert (await session.get(Project, project_id)).webhook_secret_sealed == foreign
        assert report.resealed >= 1  # the rest moved on regardless
    finally:
        await rotated.close()
