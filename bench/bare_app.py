"""The like-for-like baseline of issue 11: what a team would run without Keyguard.

A bare Starlette app answering ``GET /v1/sessions/{id}`` with a constant JSON body about
the size of Keyguard's answer, with no authentication at all. ``bench/server.py`` serves it
with uvicorn over the same TLS certificate and on the same cores as ``keyguard serve``.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

BODY = {
    "id": "sess_0000000000000000",
    "status": "open",
    "delivery_mode": "poll",
    "upload_url": "https://127.0.0.1:8443/u/sess_0000000000000000",
    "expires_at": "2026-12-05T12:00:00Z",
    "photos": [],
}


async def session(request: Request) -> JSONResponse:
    return JSONResponse({**BODY, "id": request.path_params["session_id"]})


app = Starlette(routes=[Route("/v1/sessions/{session_id}", session)])
