"""Warnings before a key's ``rotate_by`` (CONTRACT §3, seed 003: "rotate every 90 days,
set a calendar reminder" — this is the reminder).

Once a key is 14 days from its ``rotate_by``, and again at 3 days, its project's owners get
an email and a ``key.rotation_due`` audit entry (so a ``key.rotation_due`` webhook event).
Each warning goes once: the key's ``rotation_warned`` is raised by a conditional UPDATE
before anything is sent, so two instances sweeping together cannot both send it. A key
whose deadline moves later (the project's maximum age grew, or its secret was
regenerated) gets its warnings again when the time comes.
"""

from __future__ import annotations

import logging
import math
from contextlib import AbstractAsyncContextManager
from datetime import timedelta

from sqlalchemy import or_, select, update

from keyguard.accounts.members import owner_emails
from keyguard.audit import service as audit
from keyguard.clock import utc_from_ts
from keyguard.context import ServiceContext
from keyguard.i18n import translate
from keyguard.keys.models import ApiKey
from keyguard.mail.outbox import enqueue_mail
from keyguard.periodic import periodic
from keyguard.projects.models import Project

log = logging.getLogger("keyguard.keys")

# (level recorded in rotation_warned, days before rotate_by)
WARNINGS = ((1, 14), (2, 3))


def _level(rotate_by_ts: float, now: float) -> tuple[int, int] | None:
    """The most urgent warning due for a deadline: (level, days), or None yet."""
    for level, days in reversed(WARNINGS):
        if rotate_by_ts <= now + days * 86400:
            return level, days
    return None


async def warn_rotation_due(ctx: ServiceContext) -> int:
    """Send the warnings that are due now; how many were sent. A key gets only its most
    urgent due warning (one inside 3 days never also gets the 14-day one)."""
    now_ts = ctx.clock.now()
    now = utc_from_ts(now_ts)
    widest = max(days for _, days in WARNINGS)
    async with ctx.sessions() as db:
        candidates = (
            await db.execute(
                select(ApiKey.id, ApiKey.rotate_by, ApiKey.rotation_warned).where(
                    ApiKey.revoked_at.is_(None),
                    ApiKey.rotated_to.is_(None),  # rotated: its successor is what matters
                    ApiKey.rotate_by.is_not(None),
                    ApiKey.rotate_by <= now + timedelta(days=widest),
                    ApiKey.rotation_warned < len(WARNINGS),
                    or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now),
                )
            )
        ).all()
    sent = 0
    for key_id, rotate_by, warned in candidates:
        if rotate_by is None:  # pragma: no cover - the query excludes it
            continue
        due = _level(rotate_by.timestamp(), now_ts)
        if due is not None and due[0] > warned:
            sent += await _warn(ctx, key_id, *due)
    return sent


async def _warn(ctx: ServiceContext, key_id: str, level: int, days: int) -> int:
    now = utc_from_ts(ctx.clock.now())
    async with ctx.transaction() as db:
        claimed = await db.execute(
            update(ApiKey)
            .where(ApiKey.id == key_id, ApiKey.rotation_warned < level)
            .values(rotation_warned=level)
        )
        if not getattr(claimed, "rowcount", 0):
            return 0  # another instance sent it
        key = await db.get(ApiKey, key_id)
        project = await db.get(Project, key.project_id) if key and key.project_id else None
        if key is None or project is None or key.rotate_by is None:  # pragma: no cover
            return 0
        left = max(0, math.ceil((key.rotate_by - now).total_seconds() / 86400))
        await audit.record(
            db,
            at=now,
            actor="keyguard",
            action="key.rotation_due",
            target=key.id,
            project_id=project.id,
            data={"rotate_by": key.rotate_by.isoformat(), "days_left": left, "warning": days},
        )
        for email in await owner_emails(db, project.id):
            enqueue_mail(
                db,
                ctx,
                to=email,
                subject=translate("mail.rotation_due.subject", name=key.name, days=left),
                body=translate(
                    "mail.rotation_due.body",
                    name=key.name,
                    key_id=key.id,
                    project=project.name,
                    rotate_by=key.rotate_by.strftime("%Y-%m-%d %H:%M UTC"),
                    days=left,
                    enforced=translate(
                        "mail.rotation_due.enforced"
                        if project.enforce_max_key_age
                        else "mail.rotation_due.advised"
                    ),
                ),
                kind="rotation_due",
            )
    return 1


def key_age_watcher(
    ctx: ServiceContext, *, every: float = 3600.0
) -> AbstractAsyncContextManager[None]:
    """Sweeps for due warnings at start, then every ``every`` seconds (app lifespan)."""
    return periodic(lambda: warn_rotation_due(ctx), every=every, name="key age warnings")
