"""Upload sessions (CONTRACT §6), authenticated by a project key.

``GET /v1/sessions/ID`` is the hot path of the seeds' API: it authenticates through the
door directly and serialises with pydantic-core, skipping FastAPI's dependency and
response-model machinery (which costs more than the whole policy check).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from keyguard.api.deps import (
    ContextDep,
    ProjectCaller,
    add_ratelimit_headers,
    authenticate_request,
    context_of,
)
from keyguard.engine.permissions import Action
from keyguard.errors import NotFound
from keyguard.uploads import sessions
from keyguard.uploads.schemas import SessionCreate, SessionOut
from keyguard.uploads.views import SessionView

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])


def session_out(request: Request, view: SessionView) -> SessionOut:
    return SessionOut(
        id=view.id,
        upload_url=f"{context_of(request).settings.public_base_url}/upload/{view.id}",
        delivery_mode=view.delivery_mode,
        webhook_url=view.webhook_url,
        password_protected=view.password_protected,
        created_at=view.created_at,
        expires_at=view.expires_at,
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SessionOut)
async def create_session(
    body: SessionCreate, request: Request, rt: ContextDep, caller: ProjectCaller
) -> SessionOut:
    if caller.project_id is None:  # pragma: no cover - root keys never reach here
        raise NotFound()
    view = await sessions.create_session(
        rt,
        project_id=caller.project_id,
        key_id=caller.actor,
        delivery_mode=body.delivery_mode,
        webhook_url=body.webhook_url,
        password=body.password,
        expires_in=body.expires_in,
    )
    return session_out(request, view)


@router.get(
    "/{session_id}",
    response_class=Response,
    responses={200: {"model": SessionOut, "description": "The session, without its password"}},
    openapi_extra={
        "parameters": [
            {"name": "session_id", "in": "path", "required": True, "schema": {"type": "string"}}
        ]
    },
)
async def get_session(request: Request) -> Response:
    caller = await authenticate_request(request, Action.USE)
    view = await sessions.get_session(
        context_of(request), request.path_params["session_id"], project_id=caller.project_id or ""
    )
    response = Response(session_out(request, view).model_dump_json(), media_type="application/json")
    add_ratelimit_headers(response, caller)
    return response
