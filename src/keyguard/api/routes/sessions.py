"""Upload sessions (CONTRACT §6), authenticated by a project key."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from keyguard.api.deps import ProjectKey, RuntimeDep
from keyguard.api.schemas import SessionCreate, SessionOut
from keyguard.errors import NotFound
from keyguard.services import sessions
from keyguard.storage.models import UploadSession

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])


def session_out(request: Request, row: UploadSession) -> SessionOut:
    return SessionOut(
        id=row.id,
        upload_url=f"{str(request.base_url).rstrip('/')}/upload/{row.id}",
        delivery_mode=row.delivery_mode,
        webhook_url=row.webhook_url,
        password_protected=row.password_hash is not None,
        created_at=row.created_at,
        expires_at=row.expires_at,
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SessionOut)
async def create_session(
    body: SessionCreate, request: Request, rt: RuntimeDep, caller: ProjectKey
) -> SessionOut:
    if caller.project_id is None:  # pragma: no cover - root keys never reach here
        raise NotFound()
    row = await sessions.create_session(
        rt,
        project_id=caller.project_id,
        key_id=caller.key_id,
        delivery_mode=body.delivery_mode,
        webhook_url=body.webhook_url,
        password=body.password,
        expires_in=body.expires_in,
    )
    return session_out(request, row)


@router.get("/{session_id}", response_model=SessionOut)
async def get_session(
    session_id: str, request: Request, rt: RuntimeDep, caller: ProjectKey
) -> SessionOut:
    row = await sessions.get_session(rt, session_id, project_id=caller.project_id or "")
    return session_out(request, row)
