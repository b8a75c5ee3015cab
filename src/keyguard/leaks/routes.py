"""POST /v1/leaks: a secret scanner reports leaked keys (CONTRACT §10)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from keyguard.api.deps import context_of
from keyguard.leaks import service as leaks

router = APIRouter(tags=["leaks"])


@router.post("/v1/leaks", status_code=200)
async def report_leaks(request: Request) -> Response:
    ctx = context_of(request)
    body = await request.body()
    leaks.check_signature(
        ctx,
        body,
        request.headers.get("github-public-key-identifier"),
        request.headers.get("github-public-key-signature"),
    )
    outcome = await leaks.handle_report(ctx, body)
    # The same answer for any accepted report: how many tokens it carried, nothing about
    # which of them were keys.
    return JSONResponse({"received": outcome.tokens})
