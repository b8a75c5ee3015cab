"""One authorization question: may this principal do this action on this resource?

Services and routes ask :func:`authorize` instead of checking "root key" or "same
project" by hand. Refusals are the problems the contract already names: a project
credential on the management API is ``root_key_required`` (403), a root key is never a
project credential (``invalid_key``, 401), and another project's resource is answered
as if it did not exist (404).
"""

from __future__ import annotations

from enum import StrEnum

from keyguard.engine.principals import KeyPrincipal, Principal, TokenPrincipal, UserPrincipal
from keyguard.errors import CredentialsMissing, InvalidKey, NotFound, RoleTooLow, RootKeyRequired


class Action(StrEnum):
    # The management API: projects, keys, restrictions, audit (CONTRACT §3, §10).
    MANAGE = "manage"
    # A project's own resources: upload sessions, photos, webhooks (CONTRACT §6, §7).
    USE = "use"


class Role(StrEnum):
    """What a person may do in one project (CONTRACT §9; docs/accounts.md has the table)."""

    OWNER = "owner"
    ADMIN = "admin"
    DEVELOPER = "developer"
    VIEWER = "viewer"


class Permission(StrEnum):
    READ = "read"  # the project, its keys, webhooks, deliveries, sessions, audit log
    WRITE_KEYS = "write_keys"  # create, change, rotate, regenerate, revoke keys; restrictions
    WRITE_WEBHOOKS = "write_webhooks"  # endpoints, redelivery
    ROTATE_SECRETS = "rotate_secrets"  # the project's webhook signing secret
    MANAGE_MEMBERS = "manage_members"  # invite, change roles, remove members
    MANAGE_APPS = "manage_apps"  # OAuth apps: register, change, rotate the secret, delete


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.READ}),
    Role.DEVELOPER: frozenset({Permission.READ, Permission.WRITE_KEYS, Permission.WRITE_WEBHOOKS}),
    Role.ADMIN: frozenset(
        {
            Permission.READ,
            Permission.WRITE_KEYS,
            Permission.WRITE_WEBHOOKS,
            Permission.ROTATE_SECRETS,
            Permission.MANAGE_APPS,
        }
    ),
    Role.OWNER: frozenset(Permission),
}


def may(role: str | None, permission: Permission) -> bool:
    try:
        return role is not None and permission in GRANTS[Role(role)]
    except ValueError:  # a role this version does not know grants nothing
        return False


def authorize_person(
    principal: UserPrincipal, project_id: str, permission: Permission = Permission.READ
) -> Role:
    """The person's role in ``project_id``: a project they are not a member of is a 404
    (as if it did not exist); a role without ``permission`` is a 403 ``role_too_low``."""
    role = principal.roles.get(project_id)
    if role is None:
        raise NotFound()
    if not may(role, permission):
        raise RoleTooLow()
    return Role(role)


def needs_root_key(action: Action) -> bool:
    """Which kind of key the door must accept for ``action`` (checked by the engine
    before any restriction, so a wrong kind of key learns nothing about the others)."""
    return action is Action.MANAGE


def check_key_kind(is_root: bool, *, root_required: bool) -> None:
    """A root key is a management credential, never a project key, and vice versa."""
    if is_root != root_required:
        raise RootKeyRequired() if root_required else InvalidKey()


def authorize(principal: Principal, action: Action, *, project_id: str | None = None) -> None:
    """Return if ``principal`` may do ``action`` (on ``project_id``'s resources), else raise."""
    if isinstance(principal, KeyPrincipal):
        check_key_kind(principal.is_root, root_required=needs_root_key(action))
        if project_id is not None and not principal.is_root and principal.project_id != project_id:
            raise NotFound()
        return
    if isinstance(principal, UserPrincipal) and action is Action.MANAGE:
        # A person may use the management API; each resource then asks
        # :func:`authorize_person` for the role its project gives them.
        return
    if isinstance(principal, TokenPrincipal):
        if action is Action.MANAGE:
            # Only a token acting for a person manages anything (as that person, within
            # its scopes: keyguard.oauth.delegation); the client's own token never does.
            if principal.subject is None:
                raise RootKeyRequired("a client's own token manages nothing")
            return
        # An access token reaches its app's project only (CONTRACT §8).
        if project_id is not None and principal.project_id != project_id:
            raise NotFound()
        return
    # A session is no credential of a project's own API.
    raise CredentialsMissing()
