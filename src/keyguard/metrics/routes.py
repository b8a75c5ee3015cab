"""``GET /metrics``: for a root key, or the bearer token in ``KEYGUARD_METRICS_TOKEN``
(a scraper need not hold a key that can change everything); else the usual 401."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from pydantic import SecretStr

from keyguard.api.deps import ContextDep, root_only
from keyguard.metrics.exposition import CONTENT_TYPE, exposition
from keyguard.metrics.service import snapshot

router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    summary="Prometheus metrics (root key, or KEYGUARD_METRICS_TOKEN)",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}}},
)
async def metrics(request: Request, response: Response, rt: ContextDep) -> Response:
    if not _bearer_is_the_metrics_token(request, rt.settings.metrics_token):
        await root_only(request, response)  # 401/403 problem+json, as everywhere
    return Response(exposition(await snapshot(rt)), media_type=CONTENT_TYPE)


def _bearer_is_the_metrics_token(request: Request, token: SecretStr | None) -> bool:
    if token is None:
        return False
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not presented:
        return False
    return hmac.compare_digest(presented.strip().encode(), token.get_secret_value().encode())


__all__ = ["router"]
