"""Projects (CONTRACT §3): a root key sees them all; a signed-in person the projects
they are a member of, and owns the ones they create."""

from __future__ import annotations

from fastapi import APIRouter, status

from keyguard.api.deps import ContextDep, Manager, ProjectOwner
from keyguard.engine.principals import UserPrincipal
from keyguard.projects import service as projects
from keyguard.projects.schemas import ProjectCreate, ProjectCreated, ProjectOut, ProjectUpdate
from keyguard.projects.views import ProjectView
from keyguard.usage.thresholds import DEFAULTS as DEFAULT_THRESHOLDS

router = APIRouter(prefix="/v1/projects", tags=["projects"])


def _out(project: ProjectView) -> ProjectOut:
    return ProjectOut(
        id=project.id,
        name=project.name,
        key_prefix=project.key_prefix,
        created_at=project.created_at,
        max_key_age_days=project.max_key_age_days,
        enforce_max_key_age=project.enforce_max_key_age,
        leak_policy=project.leak_policy,
        anomaly_thresholds={**DEFAULT_THRESHOLDS, **project.anomaly_thresholds},
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ProjectCreated)
async def create_project(body: ProjectCreate, rt: ContextDep, caller: Manager) -> ProjectCreated:
    person = caller.account_id if isinstance(caller, UserPrincipal) else None
    created = await projects.create_project(rt, actor=caller.actor, owner=person, **body.settings())
    return ProjectCreated(
        **_out(created.project).model_dump(), webhook_secret=created.webhook_secret
    )


@router.get("", response_model=list[ProjectOut])
async def list_projects(rt: ContextDep, caller: Manager) -> list[ProjectOut]:
    member = caller.account_id if isinstance(caller, UserPrincipal) else None
    return [_out(p) for p in await projects.list_projects(rt, member=member)]


@router.get("/{project_id}", response_model=ProjectOut)
async def get_project(project_id: str, rt: ContextDep, _: Manager) -> ProjectOut:
    return _out(await projects.get_project(rt, project_id))


@router.patch("/{project_id}", response_model=ProjectOut)
async def update_project(
    project_id: str, body: ProjectUpdate, rt: ContextDep, caller: ProjectOwner
) -> ProjectOut:
    updated = await projects.update_key_age(
        rt,
        project_id,
        max_key_age_days=body.max_key_age_days,
        enforce_max_key_age=body.enforce_max_key_age,
        anomaly_thresholds=body.anomaly_thresholds,
        leak_policy=body.leak_policy,
        actor=caller.actor,
    )
    return _out(updated)
