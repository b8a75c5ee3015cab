"""Concurrent writers never fork or break the audit chain (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio

from keyguard.audit.service import verify_chain
from keyguard.projects import service as projects


async def test_concurrent_appends_keep_one_intact_chain(runtime):
    await asyncio.gather(
        *(
            projects.create_project(
                runtime, name=f"p{i}", key_prefix=None, actor="test", owner=None
            )
            for i in range(20)
        )
    )
    async with runtime.sessions() as session:
        assert await verify_chain(session) == []
