"""Unauthenticated self-description (seed 002: GET /<api>/ and GET /<api>/apiDoc)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import Scope, Send

from keyguard.errors import NotReady

router = APIRouter(tags=["meta"])


@router.get("/v1/", summary="Self-description of the API")
async def root(request: Request) -> dict[str, Any]:
    return {
        "name": "Keyguard",
        "version": request.app.version,
        "links": {
            "apiDoc": {"href": "/v1/apiDoc"},
            "projects": {"href": "/v1/projects"},
            "verify": {"href": "/v1/keys/verify"},
            "sessions": {"href": "/v1/sessions"},
            "oauth": {"href": "/.well-known/oauth-authorization-server"},
        },
    }


_HEALTHY = b'{"status":"ok"}'


@router.get("/healthz", summary="Liveness probe (served by the edge, no database)")
async def health(_: Request) -> Response:
    return Response(_HEALTHY, media_type="application/json")


async def hot_health(_: Scope, send: Send, __: str) -> None:
    """``GET /healthz`` as the edge serves it (:class:`keyguard.server.edge.HotRoute`)."""
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(_HEALTHY))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": _HEALTHY})


@router.get(
    "/readyz",
    summary="Readiness probe: the database, its migrations and Redis (when configured)",
    responses={503: {"description": "Something is down: `down` names it"}},
)
async def ready(request: Request) -> Response:
    down = await request.app.state.context.readiness()
    if down:
        raise NotReady(f"Not ready: {', '.join(down)}", down=down)
    return Response(_READY, media_type="application/json")


_READY = b'{"status":"ready"}'


@router.get("/v1/apiDoc", summary="The OpenAPI 3.1 document of this API")
async def api_doc(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())
