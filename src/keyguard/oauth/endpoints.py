"""The authorization server's protocol endpoints: discovery (RFC 8414), JWKS, token
(RFC 6749 §3.2), revocation (RFC 7009) and introspection (RFC 7662).

CORS (CONTRACT §8): a browser app may call these from an origin its app allows (the
same wildcard rule as keys' allowed domains; an app without a list allows every
origin). Discovery, the JWKS and preflights do not know the app yet: they answer an
origin some live app allows. The token endpoint, which does, refuses a request from an
origin the client's app does not allow (403 ``origin_not_allowed``, no CORS headers).
The authorization endpoint is a page, not here: it sends no CORS headers at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response

from keyguard.api.deps import client_ip, context_of
from keyguard.errors import KeyguardError, OriginNotAllowed, UnsupportedMediaType
from keyguard.oauth import introspection
from keyguard.oauth.clients import ClientRecord, authenticate_client, presented_client
from keyguard.oauth.errors import InvalidClient, InvalidRequest, UnsupportedGrantType
from keyguard.oauth.grants import GRANTS
from keyguard.oauth.server import METADATA_PATH, PATHS
from keyguard.wire import PROBLEM_JSON, problem_body, problem_headers

router = APIRouter(tags=["oauth"], include_in_schema=True)

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _cors(origin: str | None) -> dict[str, str]:
    if origin is None:
        return {}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


async def _any_app_allows(request: Request, origin: str | None) -> bool:
    if origin is None:
        return False
    return await context_of(request).oauth.origins.allowed_by_any(origin)


def _problem(error: KeyguardError, headers: Mapping[str, str]) -> Response:
    return Response(
        problem_body(error),
        status_code=error.status,
        media_type=PROBLEM_JSON,
        headers={**problem_headers(error), **NO_STORE, **headers},
    )


async def _form(request: Request) -> FormData:
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise UnsupportedMediaType("send application/x-www-form-urlencoded (RFC 6749 §3.2)")
    try:
        form = await request.form(max_fields=20, max_part_size=8192)
    except HTTPException:
        raise InvalidRequest("the form is too large") from None
    for name in form:
        if len(form.getlist(name)) > 1:  # RFC 6749 §3.1: no parameter twice
            raise InvalidRequest(f"{name} was sent more than once")
    return form


def _fields(form: FormData) -> dict[str, str]:
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def _client(request: Request, form: Mapping[str, str]) -> ClientRecord:
    presented = presented_client(request.headers.get("authorization"), form)
    return await authenticate_client(context_of(request), presented, client_ip=client_ip(request))


@router.get(METADATA_PATH)
async def metadata(request: Request) -> Response:
    origin = request.headers.get("origin")
    cors = _cors(origin) if await _any_app_allows(request, origin) else {}
    return JSONResponse(context_of(request).oauth.metadata(), headers=cors)


@router.get(PATHS["jwks_uri"])
async def jwks(request: Request) -> Response:
    origin = request.headers.get("origin")
    cors = _cors(origin) if await _any_app_allows(request, origin) else {}
    body = await context_of(request).oauth.keys.jwks()
    headers = {"Cache-Control": "public, max-age=300", **cors}
    return JSONResponse(body, headers=headers, media_type="application/jwk-set+json")


@router.options(METADATA_PATH, include_in_schema=False)
@router.options(PATHS["jwks_uri"], include_in_schema=False)
@router.options(PATHS["token_endpoint"], include_in_schema=False)
async def preflight(request: Request) -> Response:
    origin = request.headers.get("origin")
    if not await _any_app_allows(request, origin):
        return Response(status_code=204)  # no CORS headers: the browser refuses
    return Response(
        status_code=204,
        headers={
            **_cors(origin),
            "Access-Control-Allow-Methods": "GET, POST",
            "Access-Control-Allow-Headers": "Authorization, Content-Type",
            "Access-Control-Max-Age": "600",
        },
    )


@router.post(PATHS["token_endpoint"])
async def token(request: Request) -> Response:
    origin = request.headers.get("origin")
    cors: dict[str, str] = {}
    try:
        form = _fields(await _form(request))
        client = await _client(request, form)
        if origin is not None:
            if not client.domains.allows_origin(origin, None):
                raise OriginNotAllowed("this app does not allow requests from this origin")
            cors = _cors(origin)
        grant_type = form.get("grant_type")
        if not grant_type:
            raise InvalidRequest("grant_type is required")
        grant = GRANTS.get(grant_type)
        if grant is None:
            # "password" and every other type (RFC 9700 §2.4: never the password grant).
            raise UnsupportedGrantType()
        issued = await grant.exchange(context_of(request), client, form)
    except KeyguardError as error:
        return _problem(error, cors)
    return JSONResponse(issued.body(), headers={**NO_STORE, **cors})


@router.post(PATHS["revocation_endpoint"])
async def revoke(request: Request) -> Response:
    try:
        form = _fields(await _form(request))
        client = await _client(request, form)
        token_value = form.get("token")
        if not token_value:
            raise InvalidRequest("token is required")
        await introspection.revoke(context_of(request), client, token_value)
    except KeyguardError as error:
        return _problem(error, {})
    return Response(status_code=200, headers=NO_STORE)  # RFC 7009 §2.2, known token or not


@router.post(PATHS["introspection_endpoint"])
async def introspect(request: Request) -> Response:
    try:
        form = _fields(await _form(request))
        presented = presented_client(request.headers.get("authorization"), form)
        if presented.secret is None:
            raise InvalidClient("introspection needs a confidential client's credentials")
        client = await authenticate_client(
            context_of(request), presented, client_ip=client_ip(request)
        )
        token_value = form.get("token")
        if not token_value:
            raise InvalidRequest("token is required")
        answer: dict[str, Any] = await introspection.introspect(
            context_of(request), client, token_value
        )
    except KeyguardError as error:
        return _problem(error, {})
    return JSONResponse(answer, headers=NO_STORE)
