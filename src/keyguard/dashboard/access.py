"""Who may see and change what on a dashboard page: the person's role in the project,
asked through the one authorization question (``authorize_person``)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from keyguard.accounts.views import SignedIn
from keyguard.api.deps import context_of
from keyguard.engine.permissions import Permission, Role, authorize_person, may
from keyguard.errors import NotFound, RoleTooLow
from keyguard.projects import service as projects
from keyguard.web.pages import PageError, require_person


@dataclass(frozen=True, slots=True)
class InProject:
    """A signed-in person in one of their projects, and what their role lets them do."""

    me: SignedIn
    project_id: str
    project_name: str
    role: Role

    @property
    def actor(self) -> str:
        return self.me.principal.actor

    def may(self, permission: Permission) -> bool:
        return may(self.role.value, permission)


async def in_project(
    request: Request, project_id: str, permission: Permission = Permission.READ
) -> InProject:
    """The person in ``project_id`` with ``permission``: a project they are not a member
    of is the 404 page (as if it did not exist), too low a role the 403 page."""
    me = await require_person(request)
    try:
        role = authorize_person(me.principal, project_id, permission)
    except NotFound:
        raise PageError(404, "error.not_found") from None
    except RoleTooLow:
        raise PageError(403, "error.role_too_low") from None
    project = await projects.get_project(context_of(request), project_id)
    return InProject(me, project_id, project.name, role)
