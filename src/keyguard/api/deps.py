"""FastAPI dependencies: the application's context, and the authorised caller.

Routes never see the composition root: they get an :class:`AppContext` (a Protocol the
runtime satisfies) and a principal that already passed :func:`authorize` for the
route's action.
"""

from __future__ import annotations

from typing import Annotated, Any, Protocol

from fastapi import Depends, Request, Response

from keyguard.accounts.context import AccountContext
from keyguard.doors.authenticate import authenticate_scope
from keyguard.doors.scope import facts_from_scope, header_map
from keyguard.engine.ipallow import TrustedProxies
from keyguard.engine.permissions import Action, authorize, needs_root_key
from keyguard.engine.principals import Principal
from keyguard.engine.verifier import PolicyEngine
from keyguard.uploads.context import UploadContext


class AppContext(UploadContext, AccountContext, Protocol):
    """Every service's context (uploads' is the widest), plus what the doors need."""

    engine: PolicyEngine
    trusted_proxies: TrustedProxies
    # KEYGUARD_CLIENT_CERT_HEADER: the only header trusted proxies forward certificates in.
    client_cert_header: str | None


def context_of(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


def client_ip(request: Request) -> str:
    """The client's address: the peer, or what a trusted proxy forwarded for it."""
    context = context_of(request)
    facts = facts_from_scope(
        request.scope,
        header_map(request.scope),
        context.settings.header_prefix,
        context.trusted_proxies,
    )
    return str(facts.client_ip or "unknown")


async def get_context(request: Request) -> Any:
    # async on purpose: FastAPI runs sync dependencies in a worker thread.
    return context_of(request)


async def authenticate_request(request: Request, action: Action) -> Principal:
    """The door for routes that skip FastAPI's dependency machinery (the hot path)."""
    context = context_of(request)
    principal = await authenticate_scope(
        context.engine,
        request.scope,
        request.body,
        header_prefix=context.settings.header_prefix,
        trusted_proxies=context.trusted_proxies,
        client_cert_header=context.client_cert_header,
        root=needs_root_key(action),
    )
    # Where the middleware door puts it too; the error handler reads it for RateLimit-*.
    request.scope.setdefault("state", {})["keyguard"] = principal
    authorize(principal, action)
    return principal


def add_ratelimit_headers(response: Response, principal: Principal) -> None:
    if principal.ratelimit is not None:
        response.headers.update(principal.ratelimit.fields())


async def _caller(request: Request, response: Response, action: Action) -> Principal:
    principal = await authenticate_request(request, action)
    add_ratelimit_headers(response, principal)  # FastAPI copies them onto the route's response
    return principal


async def manager(request: Request, response: Response) -> Principal:
    """Who may use the management API: a root key (a person with the right role, later)."""
    return await _caller(request, response, Action.MANAGE)


async def project_caller(request: Request, response: Response) -> Principal:
    """A project's own credential, with every per-key check of the policy engine."""
    return await _caller(request, response, Action.USE)


ContextDep = Annotated[AppContext, Depends(get_context)]
Manager = Annotated[Principal, Depends(manager)]
ProjectCaller = Annotated[Principal, Depends(project_caller)]


def entitled(principal: Principal, project_id: str) -> None:
    """Another project's resource is answered as if it did not exist (404)."""
    authorize(principal, Action.USE, project_id=project_id)
