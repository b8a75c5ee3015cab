"""Keyguard's own management API as a resource server (CONTRACT §8, seed 002's
entitlements): an access token issued for a person acts as that person, in the app's
project only, and only as far as both its scopes and the person's role today allow.

A management scope names each permission a token may carry; the app must list it among
its scopes and the person's role must grant it (as for any scope). Managing members or
apps and rotating the project's secrets are never delegated: a partner app must not be
able to widen its own access. Outside the app's project, and in a project the person is
no longer a member of, resources answer 404 as if they did not exist. A token of the
client itself (client credentials) is no management credential at all.
"""

from __future__ import annotations

from keyguard.accounts.models import Membership
from keyguard.context import ServiceContext
from keyguard.engine.permissions import Permission, may
from keyguard.engine.principals import TokenPrincipal
from keyguard.errors import NotFound, RoleTooLow, RootKeyRequired, ScopeMissing

SCOPES: dict[Permission, str] = {
    Permission.READ: "keyguard:read",
    Permission.WRITE_KEYS: "keyguard:keys:write",
    Permission.WRITE_WEBHOOKS: "keyguard:webhooks:write",
}


def delegable(permission: Permission) -> bool:
    return permission in SCOPES


async def role_today(ctx: ServiceContext, project_id: str, account_id: str) -> str | None:
    async with ctx.sessions() as db:
        row = await db.get(Membership, (project_id, account_id))
    return None if row is None else row.role


async def check(
    ctx: ServiceContext, principal: TokenPrincipal, project_id: str, permission: Permission
) -> None:
    """Return if the token may use ``permission`` on ``project_id``'s resources."""
    if principal.subject is None or project_id != principal.project_id:
        raise NotFound()
    role = await role_today(ctx, project_id, principal.subject)
    if role is None:
        raise NotFound()
    scope = SCOPES.get(permission)
    if scope is None:
        raise RootKeyRequired("this needs a root key or a signed-in person, not a token")
    if scope not in principal.scopes:
        raise ScopeMissing()
    if not may(role, permission):
        raise RoleTooLow()
