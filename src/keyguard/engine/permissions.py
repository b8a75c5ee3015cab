"""One authorization question: may this principal do this action on this resource?

Services and routes ask :func:`authorize` instead of checking "root key" or "same
project" by hand. Refusals are the problems the contract already names: a project
credential on the management API is ``root_key_required`` (403), a root key is never a
project credential (``invalid_key``, 401), and another project's resource is answered
as if it did not exist (404).
"""

from __future__ import annotations

from enum import StrEnum

from keyguard.engine.principals import KeyPrincipal, Principal
from keyguard.errors import CredentialsMissing, InvalidKey, NotFound, RootKeyRequired


class Action(StrEnum):
    # The management API: projects, keys, restrictions, audit (CONTRACT §3, §10).
    MANAGE = "manage"
    # A project's own resources: upload sessions, photos, webhooks (CONTRACT §6, §7).
    USE = "use"


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
    # Access tokens and people get their rules with the OAuth and accounts features
    # (roles → scopes → entitlements); until then they are authorised for nothing.
    raise CredentialsMissing()
