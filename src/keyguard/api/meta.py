"""Unauthenticated self-description (seed 002: GET /<api>/ and GET /<api>/apiDoc)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

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
        },
    }


@router.get("/healthz", summary="Liveness probe (plain ASGI, no database)")
async def health(_: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


@router.get("/v1/apiDoc", summary="The OpenAPI 3.1 document of this API")
async def api_doc(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())
