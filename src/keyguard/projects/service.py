"""Projects: the unit that owns keys, webhooks and sessions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from keyguard.accounts.models import Membership
from keyguard.audit import service as audit
from keyguard.clock import utc_from_ts
from keyguard.context import ServiceContext
from keyguard.crypto.envelope import Envelope
from keyguard.crypto.keys import ROOT_PREFIX, valid_prefix
from keyguard.errors import NotFound, ValidationFailed
from keyguard.ids import new_id
from keyguard.keys.models import ApiKey
from keyguard.projects.models import Project
from keyguard.projects.views import ProjectView
from keyguard.usage.thresholds import check_thresholds
from keyguard.webhooks.signing import new_webhook_secret


@dataclass(frozen=True, slots=True, repr=False)
class CreatedProject:
    project: ProjectView
    webhook_secret: str  # shown once


MAX_KEY_AGE_DAYS = (1, 3650)


def _check_max_age(days: int) -> int:
    low, high = MAX_KEY_AGE_DAYS
    if not low <= days <= high:
        raise ValidationFailed(f"max_key_age_days must be between {low} and {high}")
    return days


LEAK_POLICIES = ("revoke", "quarantine")


def _check_leak_policy(policy: str) -> str:
    if policy not in LEAK_POLICIES:
        raise ValidationFailed("leak_policy must be 'revoke' or 'quarantine'")
    return policy


async def create_project(
    ctx: ServiceContext,
    *,
    name: str,
    key_prefix: str | None,
    actor: str,
    owner: str | None,
    max_key_age_days: int = 90,
    enforce_max_key_age: bool = False,
    leak_policy: str = "revoke",
) -> CreatedProject:
    prefix = ctx.settings.key_prefix if key_prefix is None else key_prefix
    if not valid_prefix(prefix) or prefix == ROOT_PREFIX:
        raise ValidationFailed(
            "key_prefix must be 1-16 lower-case ASCII letters or digits, starting with a letter"
            f" (and not the reserved {ROOT_PREFIX!r})",
            field="key_prefix",
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
        max_key_age_days=_check_max_age(max_key_age_days),
        enforce_max_key_age=enforce_max_key_age,
        leak_policy=_check_leak_policy(leak_policy),
    )
    project.webhook_secret_sealed = ctx.envelope.seal(secret, context=f"webhook:{project.id}")
    async with ctx.transaction() as session:
        if owner is None:  # made with a root key: the key's account owns the project
            key = await session.get(ApiKey, actor)
            owner = key.account_id if key is not None and key.is_root else None
        project.owner_account_id = owner
        session.add(project)
        await session.flush()
        if owner is not None:
            session.add(
                Membership(project_id=project.id, account_id=owner, role="owner", created_at=now)
            )
        await audit.record(
            session,
            at=now,
            actor=actor,
            action="project.created",
            target=project.id,
            project_id=project.id,
            data={"name": name, "key_prefix": prefix},
        )
    return CreatedProject(ProjectView.of(project), secret)


async def update_key_age(
    ctx: ServiceContext,
    project_id: str,
    *,
    max_key_age_days: int | None,
    enforce_max_key_age: bool | None,
    actor: str,
    anomaly_thresholds: dict[str, int] | None = None,
    leak_policy: str | None = None,
) -> ProjectView:
    """Change the project's key-age policy; every key's ``rotate_by`` moves with it (by
    the difference, so a regenerated secret keeps its later start)."""
    now = utc_from_ts(ctx.clock.now())
    async with ctx.transaction() as session:
        project = await session.get(Project, project_id, with_for_update=True)
        if project is None:
            raise NotFound()
        changes: dict[str, object] = {}
        keys: list[str] = []
        if max_key_age_days is not None and max_key_age_days != project.max_key_age_days:
            shift = timedelta(days=_check_max_age(max_key_age_days) - project.max_key_age_days)
            changes["max_key_age_days"] = max_key_age_days
            project.max_key_age_days = max_key_age_days
            rows = await session.execute(
                select(ApiKey).where(ApiKey.project_id == project_id, ApiKey.rotate_by.is_not(None))
            )
            for key in rows.scalars():
                assert key.rotate_by is not None
                key.rotate_by += shift
                # Warnings still ahead of the new deadline are owed again.
                if key.rotate_by > now + timedelta(days=14):
                    key.rotation_warned = 0
                elif key.rotate_by > now + timedelta(days=3):
                    key.rotation_warned = min(key.rotation_warned, 1)
                key.updated_at = now  # other instances' key caches poll on this
                keys.append(key.id)
        if enforce_max_key_age is not None and enforce_max_key_age != project.enforce_max_key_age:
            changes["enforce_max_key_age"] = enforce_max_key_age
            project.enforce_max_key_age = enforce_max_key_age
            keys = [
                key_id
                for key_id in (
                    await session.execute(select(ApiKey.id).where(ApiKey.project_id == project_id))
                ).scalars()
            ]
            await session.execute(
                update(ApiKey).where(ApiKey.project_id == project_id).values(updated_at=now)
            )
        if leak_policy is not None and leak_policy != project.leak_policy:
            changes["leak_policy"] = project.leak_policy = _check_leak_policy(leak_policy)
        if anomaly_thresholds is not None:
            merged = {**project.anomaly_thresholds, **check_thresholds(anomaly_thresholds)}
            if merged != project.anomaly_thresholds:
                changes["anomaly_thresholds"] = merged
                project.anomaly_thresholds = merged
        if changes:
            await audit.record(
                session,
                at=now,
                actor=actor,
                action="project.updated",
                target=project_id,
                project_id=project_id,
                data=changes,
            )
    for key_id in keys:  # after the commit: checks see the new deadlines at once
        ctx.cache.invalidate(key_id)
    return ProjectView.of(project)


async def list_projects(ctx: ServiceContext, *, member: str | None = None) -> list[ProjectView]:
    """Every project, or only those ``member`` (an account id) belongs to."""
    query = select(Project).order_by(Project.created_at, Project.id)
    if member is not None:
        query = query.join(Membership, Membership.project_id == Project.id).where(
            Membership.account_id == member
        )
    async with ctx.sessions() as session:
        rows = await session.execute(query)
        return [ProjectView.of(row) for row in rows.scalars()]


async def get_project(ctx: ServiceContext, project_id: str) -> ProjectView:
    async with ctx.sessions() as session:
        project = await session.get(Project, project_id)
    if project is None:
        raise NotFound()
    return ProjectView.of(project)


def active_webhook_secrets(envelope: Envelope, project: Project, now: datetime) -> list[str]:
    """The project's webhook secrets to sign with, newest first.

    The previous secret is included until its overlap ends, so receivers that still
    verify with it keep working while they switch.
    """
    context = f"webhook:{project.id}"
    found = [envelope.open(project.webhook_secret_sealed, context=context)]
    until = project.previous_webhook_secret_until
    if project.previous_webhook_secret_sealed and until is not None and until > now:
        found.append(envelope.open(project.previous_webhook_secret_sealed, context=context))
    return found


@dataclass(frozen=True, slots=True, repr=False)
class RotatedSecret:
    webhook_secret: str  # shown once
    previous_valid_until: datetime


async def rotate_webhook_secret(
    ctx: ServiceContext, project_id: str, *, overlap_seconds: int, actor: str
) -> RotatedSecret:
    """A new webhook secret; the current one keeps signing for ``overlap_seconds``.

    Only two secrets are ever active: rotating again during an overlap retires the
    oldest one at once.
    """
    secret = new_webhook_secret()
    now = utc_from_ts(ctx.clock.now())
    until = now + timedelta(seconds=overlap_seconds)
    async with ctx.transaction() as session:
        project = await session.get(Project, project_id, with_for_update=True)
        if project is None:
            raise NotFound()
        # Both are sealed under the same context (the project id): moving the sealed
        # text from one column to the other needs no re-encryption.
        project.previous_webhook_secret_sealed = project.webhook_secret_sealed
        project.previous_webhook_secret_until = until
        project.webhook_secret_sealed = ctx.envelope.seal(secret, context=f"webhook:{project.id}")
        await audit.record(
            session,
            at=now,
            actor=actor,
            action="project.webhook_secret_rotated",
            target=project.id,
            project_id=project.id,
            data={"overlap_seconds": overlap_seconds},
        )
    return RotatedSecret(secret, until)
