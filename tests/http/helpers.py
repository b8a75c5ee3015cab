"""Small helpers shared by the HTTP tests."""

from __future__ import annotations

from typing import Any

import httpx

POLL_SESSION = {"delivery_mode": "poll"}


async def create_key(
    client: httpx.AsyncClient, headers: dict[str, str], project_id: str, **body: Any
) -> dict[str, Any]:
    body.setdefault("name", "server")
    r = await client.post(f"/v1/projects/{project_id}/keys", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
