"""Small helpers shared by the HTTP tests."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select

from keyguard.audit.models import AuditEvent
from keyguard.keys.models import ApiKey
from keyguard.runtime import Runtime
from keyguard.uploads.models import UploadSession

POLL_SESSION = {"delivery_mode": "poll"}


async def create_key(
    client: httpx.AsyncClient, headers: dict[str, str], project_id: str, **body: Any
) -> dict[str, Any]:
    body.setdefault("name", "server")
    body.setdefault("environment", "live")
    r = await client.post(f"/v1/projects/{project_id}/keys", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def counts(runtime: Runtime) -> tuple[int, ...]:
    """Rows of keys, audit events and sessions: a refused request changes none of them."""
    async with runtime.sessions() as db:
        return tuple(
            [
                (await db.execute(select(func.count()).select_from(model))).scalar_one()
                for model in (ApiKey, AuditEvent, UploadSession)
            ]
        )
