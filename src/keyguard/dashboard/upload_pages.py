"""Upload sessions and their photos (CONTRACT §6), read-only: what the project's keys
created, with how many photos each holds; a session's photos by name, type and size."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from keyguard.api.deps import context_of
from keyguard.dashboard.access import in_project
from keyguard.errors import NotFound
from keyguard.uploads import photos, sessions
from keyguard.web.pages import PageError, render

router = APIRouter(include_in_schema=False)


@router.get("/projects/{project_id}/uploads")
async def uploads_page(request: Request, project_id: str) -> Response:
    where = await in_project(request, project_id)
    found = await sessions.recent_sessions(context_of(request), project_id)
    return await render(
        request, "dashboard/uploads.html", where=where, project_id=project_id, sessions=found
    )


@router.get("/projects/{project_id}/uploads/{session_id}")
async def upload_session_page(request: Request, project_id: str, session_id: str) -> Response:
    where = await in_project(request, project_id)
    ctx = context_of(request)
    try:
        session = await sessions.get_session(ctx, session_id, project_id=project_id)
        found = await photos.list_photos(ctx, session_id, project_id=project_id)
    except NotFound:
        raise PageError(404, "error.not_found") from None
    return await render(
        request,
        "dashboard/upload_session.html",
        where=where,
        project_id=project_id,
        session=session,
        photos=found,
    )
