"""Audit checkpoints sent out as ``audit.checkpoint`` events (CONTRACT §10), so a copy of
each lives outside the database, where whoever can rewrite the log cannot reach it.

Every ``KEYGUARD_AUDIT_CHECKPOINT_SECONDS`` (and at start) the log's current checkpoint is
signed; if no instance has sent that tree size yet, it goes to every project's endpoints
subscribed to the event by name (not ``*``: the log's size is installation-wide), through
the same durable outbox as every other event.
"""

from __future__ import annotations

import base64
from contextlib import AbstractAsyncContextManager

from sqlalchemy import select

from keyguard.audit import checkpoints
from keyguard.clock import utc_from_ts
from keyguard.context import ServiceContext
from keyguard.periodic import periodic
from keyguard.webhooks.models import WebhookEndpoint
from keyguard.webhooks.outbox import enqueue

AUDIT_CHECKPOINT = "audit.checkpoint"


async def publish_checkpoint(ctx: ServiceContext) -> int:
    """Send the current checkpoint if it is new; the number of projects it went to."""
    signed = await checkpoints.sign_current(ctx)
    if signed.checkpoint.size == 0:
        return 0
    at = utc_from_ts(ctx.clock.now())
    data = {
        "origin": signed.checkpoint.origin,
        "tree_size": signed.checkpoint.size,
        "root_hash": base64.b64encode(signed.checkpoint.root).decode(),
        "key_id": signed.key_id,
        "checkpoint": signed.note,
        "occurred_at": at.isoformat().replace("+00:00", "Z"),
    }
    sent = 0
    async with ctx.transaction() as session:
        if not await checkpoints.claim_publication(session, signed, at):
            return 0
        projects = (
            await session.execute(
                select(WebhookEndpoint.project_id)
                .where(WebhookEndpoint.enabled.is_(True), WebhookEndpoint.deleted_at.is_(None))
                .distinct()
            )
        ).scalars()
        for project_id in list(projects):
            # By name only: the log's size says how busy the whole installation is, which
            # a project's catch-all endpoint should not learn unasked.
            message = await enqueue(
                session,
                project_id=project_id,
                event_type=AUDIT_CHECKPOINT,
                data=data,
                at=at,
                explicit_only=True,
            )
            sent += message is not None
    return sent


def checkpoint_publisher(ctx: ServiceContext) -> AbstractAsyncContextManager[None]:
    """At start, then every ``audit_checkpoint_seconds`` (app lifespan)."""
    return periodic(
        lambda: publish_checkpoint(ctx),
        every=ctx.settings.audit_checkpoint_seconds,
        name="audit checkpoints",
    )
