"""Upload sessions (CONTRACT §6), authenticated by a project key.

``GET /v1/sessions/ID`` is the hot path of the seeds' API. The edge serves it before the
application (:func:`hot_get_session`): the door straight on the ASGI scope, the session
from its in-memory cache, and its JSON serialised once (a session never changes after
creation). The FastAPI route below documents it in the OpenAPI schema and answers what
the edge hands on (a ``GET`` with a body).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Request, Response, status
from starlette.types import Scope, Send

from keyguard.api.deps import (
    AppContext,
    ContextDep,
    ProjectCaller,
    add_ratelimit_headers,
    authenticate_request,
    context_of,
)
from keyguard.doors.authenticate import authenticate_scope
from keyguard.engine.permissions import Action, authorize, needs_root_key
from keyguard.errors import NotFound
from keyguard.uploads import sessions
from keyguard.uploads.schemas import SessionCreate, SessionOut
from keyguard.uploads.views import SessionView

if TYPE_CHECKING:
    from keyguard.server.edge import HotHandler

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])


# Serialised sessions kept for the hot route; a session's JSON depends only on the
# (immutable) view and the public URL.
_BODIES_KEPT = 4096


def session_out(request: Request, view: SessionView) -> SessionOut:
    return _session_out(context_of(request).settings.public_base_url, view)


def _session_out(base_url: str, view: SessionView) -> SessionOut:
    return SessionOut(
        id=view.id,
        upload_url=f"{base_url}/upload/{view.id}",
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


def hot_get_session(context: AppContext) -> HotHandler:
    """``GET /v1/sessions/ID`` for the edge: the same checks and answer as
    :func:`get_session`, written straight to ASGI."""
    root = needs_root_key(Action.USE)
    bodies: dict[str, tuple[SessionView, str, bytes]] = {}

    async def no_body() -> bytes:
        return b""  # the edge routes only requests without a body here

    def body_of(view: SessionView, base_url: str) -> bytes:
        kept = bodies.get(view.id)
        if kept is not None and kept[0] is view and kept[1] == base_url:
            return kept[2]
        body = _session_out(base_url, view).model_dump_json().encode()
        if len(bodies) >= _BODIES_KEPT:
            del bodies[next(iter(bodies))]  # the oldest
        bodies[view.id] = (view, base_url, body)
        return body

    async def serve(scope: Scope, send: Send, session_id: str) -> None:
        settings = context.settings
        caller = await authenticate_scope(
            context.engine,
            scope,
            no_body,
            header_prefix=settings.header_prefix,
            trusted_proxies=context.trusted_proxies,
            client_cert_header=context.client_cert_header,
            root=root,
        )
        # Where the other doors put it: the edge's error answer reads it for RateLimit-*.
        scope.setdefault("state", {})["keyguard"] = caller
        authorize(caller, Action.USE)
        view = await sessions.get_session(context, session_id, project_id=caller.project_id or "")
        body = body_of(view, settings.public_base_url)
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        if caller.ratelimit is not None:
            headers.extend(caller.ratelimit.header_items())
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return serve
