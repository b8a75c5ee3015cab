"""FastAPI dependencies: the runtime, and the caller authenticated by the policy engine."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request, Response

from keyguard.doors.authenticate import authenticate_scope
from keyguard.engine.records import Principal
from keyguard.errors import NotFound
from keyguard.runtime import Runtime


def runtime_of(request: Request) -> Runtime:
    return cast(Runtime, request.app.state.runtime)


async def get_runtime(request: Request) -> Runtime:
    # async on purpose: FastAPI runs sync dependencies in a worker thread.
    return runtime_of(request)


async def authenticate_request(request: Request, *, root: bool) -> Principal:
    """The door for routes that skip FastAPI's dependency machinery (the hot path)."""
    runtime = runtime_of(request)
    principal = await authenticate_scope(
        runtime.engine,
        request.scope,
        request.body,
        header_prefix=runtime.settings.header_prefix,
        trusted_proxies=runtime.trusted_proxies,
        client_cert_header=runtime.client_cert_header,
        root=root,
    )
    # Where the middleware door puts it too; the error handler reads it for RateLimit-*.
    request.scope.setdefault("state", {})["keyguard"] = principal
    return principal


def add_ratelimit_headers(response: Response, principal: Principal) -> None:
    if principal.ratelimit is not None:
        for name, value in principal.ratelimit.header_items():
            response.headers[name.decode()] = value.decode()


async def _authenticate(request: Request, response: Response, *, root: bool) -> Principal:
    principal = await authenticate_request(request, root=root)
    add_ratelimit_headers(response, principal)  # FastAPI copies them onto the route's response
    return principal


async def root_principal(request: Request, response: Response) -> Principal:
    """A root key: the management API's service-account credential."""
    return await _authenticate(request, response, root=True)


async def project_principal(request: Request, response: Response) -> Principal:
    """A project key, with every per-key check of the policy engine."""
    return await _authenticate(request, response, root=False)


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
RootKey = Annotated[Principal, Depends(root_principal)]
ProjectKey = Annotated[Principal, Depends(project_principal)]


def same_project(principal: Principal, project_id: str) -> None:
    """Another project's resource is answered as if it did not exist."""
    if principal.project_id != project_id:
        raise NotFound()
