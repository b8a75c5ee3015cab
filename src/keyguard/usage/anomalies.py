"""Usage anomalies (CONTRACT §10): ``key.anomaly`` events with a ``reason``, found in the
flushed counts in the background, never on the request path.

- ``failure_burst``: at least ``failure_burst`` refusals of one key within
  ``failure_window_minutes`` (default 20 in 5 minutes): someone is guessing at its
  restrictions, or a client broke.
- ``new_network``: a success from a /24 or /48 the key has not used for
  ``new_network_days`` (30), once the key has a day of history (its first days would
  otherwise be all "new").
- ``traffic_spike``: the last whole hour had at least ``spike_min_requests`` (100) and
  ``spike_factor`` (10) times the key's hourly average over the day before, once the key
  has that day of history.

Each goes to the audit log (so a ``key.anomaly`` webhook event) and by email to the
project's owners, at most once per key and reason per hour (a claim row written with the
report, so across instances too). ``new_network`` is looked at right after each usage
flush; the other two by :func:`anomaly_watcher` every minute. Thresholds are per project
(``PATCH /v1/projects/P {"anomaly_thresholds": {...}}``); a threshold of 0 turns its
reason off.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from keyguard.accounts.members import owner_emails
from keyguard.audit import service as audit
from keyguard.clock import utc_from_ts
from keyguard.context import ServiceContext
from keyguard.i18n import translate
from keyguard.mail.outbox import enqueue_mail
from keyguard.periodic import periodic
from keyguard.projects.models import Project
from keyguard.usage.models import (
    PROJECT_TOTAL,
    AnomalyClaim,
    KeyNetwork,
    UsageBucket,
    upsert,
)
from keyguard.usage.thresholds import DEFAULTS

log = logging.getLogger("keyguard.usage")

REASONS = ("failure_burst", "new_network", "traffic_spike")
ONCE_PER = 3600
HISTORY = timedelta(days=1)


def thresholds(project: Project | None) -> dict[str, int]:
    return {**DEFAULTS, **((project.anomaly_thresholds or {}) if project else {})}


async def report(
    db: AsyncSession,
    ctx: ServiceContext,
    key_id: str,
    project_id: str,
    reason: str,
    data: dict[str, Any],
) -> bool:
    """Record one anomaly, unless this key had one for ``reason`` within the hour. The
    claim is a row written in the same transaction as the report: two instances cannot
    both report, and a report that fails claims nothing."""
    at = utc_from_ts(ctx.clock.now())
    claim = upsert(db, AnomalyClaim).values(key_id=key_id, reason=reason, reported_at=at)
    claimed = await db.execute(
        claim.on_conflict_do_update(
            index_elements=["key_id", "reason"],
            set_={"reported_at": claim.excluded.reported_at},
            where=AnomalyClaim.reported_at <= at - timedelta(seconds=ONCE_PER),
        )
    )
    if not getattr(claimed, "rowcount", 0):
        return False
    await audit.record(
        db,
        at=at,
        actor="keyguard",
        action="key.anomaly",
        target=key_id,
        project_id=project_id,
        data={"reason": reason, **data},
    )
    project = await db.get(Project, project_id)
    details = ", ".join(f"{k}: {v}" for k, v in data.items())
    for email in await owner_emails(db, project_id):
        enqueue_mail(
            db,
            ctx,
            to=email,
            subject=translate(f"mail.anomaly.{reason}", key_id=key_id),
            body=translate(
                "mail.anomaly.body",
                what=translate(f"mail.anomaly.{reason}", key_id=key_id),
                project=project.name if project else project_id,
                details=details,
                time=at.strftime("%Y-%m-%d %H:%M UTC"),
            ),
            kind="key_anomaly",
        )
    return True


async def check_networks(
    ctx: ServiceContext, seen: Mapping[tuple[str, str | None], Mapping[str, float]]
) -> int:
    """Remember the networks each key was just used from (``{(key, project): {network:
    last time}}``) and report the ones it had not used lately. Reads only those networks'
    rows, so its cost does not grow with how many networks a key ever used."""
    reported = 0
    async with ctx.transaction() as db:
        projects: dict[str, Project | None] = {}
        for (key_id, project_id), networks in sorted(seen.items()):
            known = {
                row.network: row
                for row in (
                    await db.execute(
                        select(KeyNetwork).where(
                            KeyNetwork.key_id == key_id, KeyNetwork.network.in_(list(networks))
                        )
                    )
                ).scalars()
            }
            first = (
                await db.execute(
                    select(func.min(KeyNetwork.first_seen)).where(KeyNetwork.key_id == key_id)
                )
            ).scalar_one()
            if project_id is not None and project_id not in projects:
                projects[project_id] = await db.get(Project, project_id)
            limits = thresholds(projects.get(project_id) if project_id else None)
            quiet = timedelta(days=limits["new_network_days"])
            for network, at in sorted(networks.items()):
                when = utc_from_ts(at)
                row = known.get(network)
                fresh = row is None or row.last_seen < when - quiet
                if (
                    fresh
                    and project_id is not None
                    and limits["new_network_days"]
                    and first is not None
                    and first <= when - HISTORY
                ):
                    data = {"network": network}
                    reported += await report(db, ctx, key_id, project_id, "new_network", data)
                if row is None:
                    db.add(
                        KeyNetwork(
                            key_id=key_id,
                            network=network,
                            project_id=project_id,
                            first_seen=when,
                            last_seen=when,
                        )
                    )
                elif row.last_seen < when:
                    row.last_seen = when
    return reported


async def _sums(
    db: AsyncSession, granularity: str, since: datetime, until: datetime, *, refused: bool
) -> dict[tuple[str, str], int]:
    query = (
        select(UsageBucket.key_id, UsageBucket.project_id, func.sum(UsageBucket.count))
        .where(
            UsageBucket.granularity == granularity,
            UsageBucket.start >= since,
            UsageBucket.start < until,
            UsageBucket.project_id.is_not(None),
            UsageBucket.key_id.not_like(f"{PROJECT_TOTAL}%"),
        )
        .group_by(UsageBucket.key_id, UsageBucket.project_id)
    )
    if refused:
        query = query.where(UsageBucket.code != "")
    return {(k, str(p)): int(n) for k, p, n in (await db.execute(query)).all()}


async def check_counts(ctx: ServiceContext) -> int:
    """``failure_burst`` and ``traffic_spike``, from the flushed minute and hour buckets."""
    now = ctx.clock.now()
    reported = 0
    async with ctx.transaction() as db:
        limits = {p.id: thresholds(p) for p in (await db.execute(select(Project))).scalars()}
        # Failure bursts: refusals within each project's window (one query per window).
        minute_now = now - now % 60
        windows = {t["failure_window_minutes"] for t in limits.values()}
        windows.add(DEFAULTS["failure_window_minutes"])
        for window in sorted(windows):
            since = utc_from_ts(minute_now - (window - 1) * 60)
            counts = await _sums(db, "minute", since, utc_from_ts(minute_now + 60), refused=True)
            for (key_id, project_id), n in sorted(counts.items()):
                t = limits.get(project_id, DEFAULTS)
                if t["failure_window_minutes"] != window or not t["failure_burst"]:
                    continue
                if n >= t["failure_burst"]:
                    data = {"refusals": n, "minutes": window}
                    reported += await report(db, ctx, key_id, project_id, "failure_burst", data)
        # Traffic spikes: the last whole hour against the day before it.
        hour = now - now % 3600
        last = await _sums(db, "hour", utc_from_ts(hour - 3600), utc_from_ts(hour), refused=False)
        day = await _sums(
            db, "hour", utc_from_ts(hour - 25 * 3600), utc_from_ts(hour - 3600), refused=False
        )
        for (key_id, project_id), n in sorted(last.items()):
            t = limits.get(project_id, DEFAULTS)
            if not t["spike_factor"] or n < t["spike_min_requests"]:
                continue
            oldest = (
                await db.execute(
                    select(func.min(UsageBucket.start)).where(
                        UsageBucket.granularity == "hour", UsageBucket.key_id == key_id
                    )
                )
            ).scalar_one()
            if oldest is None or oldest > utc_from_ts(hour - 25 * 3600):
                continue  # less than a day of history: nothing is usual yet
            average = day.get((key_id, project_id), 0) / 24
            if n >= t["spike_factor"] * max(average, 1):
                reported += await report(
                    db,
                    ctx,
                    key_id,
                    project_id,
                    "traffic_spike",
                    {"requests": n, "hourly_average": round(average, 1)},
                )
    return reported


def anomaly_watcher(
    ctx: ServiceContext, *, every: float = 60.0
) -> AbstractAsyncContextManager[None]:
    """Looks at the flushed counts every ``every`` seconds (app lifespan)."""
    return periodic(lambda: check_counts(ctx), every=every, name="anomaly check", at_start=False)
