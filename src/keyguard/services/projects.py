"""Projects: the unit that owns keys, webhooks and sessions."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from keyguard.clock import utc_from_ts
from keyguard.crypto.keys import valid_prefix
from keyguard.errors import NotFound, ValidationFailed
from keyguard.ids import new_id
from keyguard.services import audit
from keyguard.services.context import ServiceContext
from keyguard.storage.models import Project
from keyguard.webhooks.signing import new_webhook_secret


@dataclass(frozen=True, slots=True, repr=False)
class CreatedProject:
    project: Project
    webhook_secret: str  # shown once


async def create_project(
    ctx: ServiceContext, *, name: str, key_prefix: str | None, actor: str, owner: str | None
) -> CreatedProject:
    prefix = ctx.settings.key_prefix if key_prefix is None else key_prefix
    if not valid_prefix(prefix):
        raise ValidationFailed(
            "key_prefix must be 1-16 lower-case ASCII letters or digits, starting with a letter"
        )
    secret = new_webhook_secret()
    now = utc_from_ts(ctx.clock.now())
    project = Project(
        id=new_id("proj"),
        name=name,
        key_prefix=prefix,
        owner_account_id=owner,
        webhook_secret_sealed="",
        created_at=now,
        max_key_age_days=90,
    )
    project.webhook_secret_sealed = ctx.envelope.seal(secret, context=f"webhook:{project.id}")
    async with ctx.transaction() as session:
        session.add(project)
        await session.flush()
        await audit.record(
            session,
            at=now,
            actor=actor,
            action="project.created",
            target=project.id,
            project_id=project.id,
            data={"name": name, "key_prefix": prefix},
        )
    return CreatedProject(project, secret)


async def list_projects(ctx: ServiceContext) -> list[Project]:
    async with ctx.sessions() as session:
        rows = await session.execute(select(Project).order_by(Project.created_at, Project.id))
        return list(rows.scalars())


async def get_project(ctx: ServiceContext, project_id: str) -> Project:
    async with ctx.sessions() as session:
        project = await session.get(Project, project_id)
    if project is None:
        raise NotFound()
    return project
