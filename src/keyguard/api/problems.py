"""The HTTP edge of the error hierarchy: every error becomes application/problem+json."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from keyguard.engine.principals import PRINCIPAL_TYPES
from keyguard.engine.records import RateLimitStatus
from keyguard.errors import PROBLEM_BASE, InternalError, KeyguardError
from keyguard.wire import PROBLEM_JSON, problem_body, problem_headers

log = structlog.get_logger("keyguard.api")


def caller_ratelimit(scope: Mapping[str, Any]) -> RateLimitStatus | None:
    """The rate limit of the caller a door authenticated for this request, if any: an
    error after authentication (e.g. a 404) still reports it."""
    principal = (scope.get("state") or {}).get("keyguard")
    if isinstance(principal, PRINCIPAL_TYPES):
        return principal.ratelimit
    return None


def problem_response(error: KeyguardError) -> Response:
    return Response(
        problem_body(error),
        status_code=error.status,
        media_type=PROBLEM_JSON,
        headers=problem_headers(error),
    )


def _plain_problem(status: int, code: str, title: str, **extra: Any) -> Response:
    body = {"type": PROBLEM_BASE + code, "title": title, "status": status, "code": code, **extra}
    return Response(json.dumps(body), status_code=status, media_type=PROBLEM_JSON)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Only where and why: pydantic's "input" would echo what was sent (maybe a secret).
    return [
        {
            "loc": [str(p) for p in err.get("loc", ())],
            "msg": err.get("msg", ""),
            "type": err.get("type", ""),
        }
        for err in exc.errors()
    ]


def install(app: FastAPI) -> None:
    async def on_keyguard_error(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, KeyguardError):  # this handler is registered for it only
            raise exc
        response = problem_response(exc)
        # An error after authentication (e.g. a 404) still reports the caller's rate limit.
        ratelimit = caller_ratelimit(request.scope)
        if ratelimit is not None:
            for name, value in ratelimit.fields().items():
                response.headers.setdefault(name, value)
        return response

    async def on_validation_error(_: Request, exc: Exception) -> Response:
        if not isinstance(
            exc, RequestValidationError
        ):  # this handler is registered for RequestValidationError only
            raise exc
        return _plain_problem(
            422, "validation_failed", "The request is not valid", errors=_validation_errors(exc)
        )

    async def on_http_error(_: Request, exc: Exception) -> Response:
        if not isinstance(
            exc, StarletteHTTPException
        ):  # this handler is registered for StarletteHTTPException only
            raise exc
        if exc.status_code == 400:
            # Starlette's "error parsing the body" (e.g. JSON nested too deep): CONTRACT §2
            # answers every malformed body with 422.
            return _plain_problem(422, "validation_failed", "The request body could not be parsed")
        codes = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
        code = codes.get(exc.status_code, "http_error")
        return _plain_problem(exc.status_code, code, str(exc.detail))

    async def on_unexpected(_: Request, exc: Exception) -> Response:
        log.error("unhandled_error", error_type=type(exc).__name__)
        return problem_response(InternalError())

    app.add_exception_handler(KeyguardError, on_keyguard_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
