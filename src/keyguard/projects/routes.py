"""Projects (CONTRACT §3), root key only."""

from __future__ import annotations

from fastapi import APIRouter, status

from keyguard.api.deps import ContextDep, Manager
from keyguard.projects import service as projects
from keyguard.projects.schemas import ProjectCreate, ProjectCreated, ProjectOut
from keyguard.projects.views import ProjectView

router = APIRouter(prefix="/v1/projects", tags=["projects"])


def _out(project: ProjectView) -> ProjectOut:
    return ProjectOut(
        id=project.id,
        name=project.name,
        key_prefix=project.key_prefix,
        created_at=project.created_at,
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ProjectCreated)
async def create_project(body: ProjectCreate, rt: ContextDep, caller: Manager) -> ProjectCreated:
    created = await projects.create_project(
        rt, name=body.name, key_prefix=body.key_prefix, actor=caller.actor, owner=None
    )
    return ProjectCreated(
        **_out(created.project).model_dump(), webhook_secret=created.webhook_secret
    )


@router.get("", response_model=list[ProjectOut])
async def list_projects(rt: ContextDep, _: Manager) -> list[ProjectOut]:
    return [_out(p) for p in await projects.list_projects(rt)]


@router.get("/{project_id}", response_model=ProjectOut)
async def get_project(project_id: str, rt: ContextDep, _: Manager) -> ProjectOut:
    return _out(await projects.get_project(rt, project_id))
