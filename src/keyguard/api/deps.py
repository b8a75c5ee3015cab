"""FastAPI dependencies: the application's context, and the authorised caller.

Routes never see the composition root: they get an :class:`AppContext` (a Protocol the
runtime satisfies) and a principal that already passed :func:`authorize` for the
route's action.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Protocol

from fastapi import Depends, Request, Response

from keyguard.accounts.context import AccountContext
from keyguard.accounts.principal import CSRF_HEADER, check_csrf
from keyguard.doors.authenticate import authenticate_scope
from keyguard.doors.scope import facts_from_scope, header_map
from keyguard.engine.ipallow import TrustedProxies
from keyguard.engine.permissions import (
    Action,
    Permission,
    authorize,
    authorize_person,
    needs_root_key,
)
from keyguard.engine.principals import (
    KeyPrincipal,
    Principal,
    TokenPrincipal,
    UserPrincipal,
    session_cookie,
)
from keyguard.engine.verifier import PolicyEngine
from keyguard.errors import NotFound, RootKeyRequired
from keyguard.oauth import delegation
from keyguard.oauth.server import OAuthContext
from keyguard.uploads.context import UploadContext


class AppContext(UploadContext, AccountContext, OAuthContext, Protocol):
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


# A path parameter naming a resource -> the project it belongs to (None: no such
# resource). Each feature registers its own kinds beside its routes.
ProjectOf = Callable[[Any, str], Awaitable[str | None]]
_PROJECT_OF: dict[str, ProjectOf] = {}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def _the_project(ctx: Any, project_id: str) -> str | None:
    return project_id


def resource_kind(path_parameter: str, project_of: ProjectOf) -> None:
    _PROJECT_OF[path_parameter] = project_of


resource_kind("project_id", _the_project)


async def _resource_project(request: Request) -> str | None:
    """The project of the resource the path names (404 for one that does not exist);
    None when the path names none (listing or creating projects)."""
    for name, value in request.path_params.items():
        project_of = _PROJECT_OF.get(name)
        if project_of is None:
            continue
        project_id = await project_of(context_of(request), value)
        if project_id is None:
            raise NotFound()
        return project_id
    return None


async def _person_may(request: Request, principal: UserPrincipal, write: Permission) -> None:
    """A person's role in the project of the resource the path names: READ for safe
    methods, ``write`` otherwise (which also needs the session's CSRF token)."""
    unsafe = request.method not in SAFE_METHODS
    if unsafe:
        cookie = session_cookie(request.headers.get("cookie"))
        check_csrf(context_of(request), cookie, request.headers.get(CSRF_HEADER))
    project_id = await _resource_project(request)
    if project_id is not None:  # else the route scopes it
        authorize_person(principal, project_id, write if unsafe else Permission.READ)


async def _token_may(request: Request, principal: TokenPrincipal, write: Permission) -> None:
    """A person's access token: the same question for the resource the path names, in
    the token's project only (``keyguard.oauth.delegation``). No CSRF check: a Bearer
    token is never sent by a browser on its own."""
    project_id = await _resource_project(request)
    if project_id is None or not delegation.delegable(write):
        # Listing or creating projects, or a room (members, apps, secrets) a token
        # never enters, not even to read it.
        raise RootKeyRequired("this needs a root key or a signed-in person, not a token")
    permission = write if request.method not in SAFE_METHODS else Permission.READ
    await delegation.check(context_of(request), principal, project_id, permission)


def manager_with(write: Permission) -> Callable[[Request, Response], Awaitable[Principal]]:
    """Who may use the management API: a root key, a signed-in person whose role in the
    resource's project allows it (``write`` for changes), or an access token acting for
    such a person in its app's project (CONTRACT §8)."""

    async def manager(request: Request, response: Response) -> Principal:
        principal = await _caller(request, response, Action.MANAGE)
        if isinstance(principal, UserPrincipal):
            await _person_may(request, principal, write)
        elif isinstance(principal, TokenPrincipal):
            await _token_may(request, principal, write)
        return principal

    return manager


async def root_only(request: Request, response: Response) -> Principal:
    """A root key and nothing else (e.g. verifying any project's keys)."""
    principal = await _caller(request, response, Action.MANAGE)
    if not isinstance(principal, KeyPrincipal):
        raise RootKeyRequired()
    return principal


manager = manager_with(Permission.WRITE_KEYS)


async def project_caller(request: Request, response: Response) -> Principal:
    """A project's own credential, with every per-key check of the policy engine."""
    return await _caller(request, response, Action.USE)


ContextDep = Annotated[AppContext, Depends(get_context)]
Manager = Annotated[Principal, Depends(manager)]
WebhookManager = Annotated[Principal, Depends(manager_with(Permission.WRITE_WEBHOOKS))]
SecretRotator = Annotated[Principal, Depends(manager_with(Permission.ROTATE_SECRETS))]
ProjectOwner = Annotated[Principal, Depends(manager_with(Permission.MANAGE_MEMBERS))]
RootOnly = Annotated[Principal, Depends(root_only)]
ProjectCaller = Annotated[Principal, Depends(project_caller)]


def entitled(principal: Principal, project_id: str) -> None:
    """Another project's resource is answered as if it did not exist (404)."""
    authorize(principal, Action.USE, project_id=project_id)
