"""Sends queued email: claims due messages, sends them over SMTP, retries with back-off.

A message is tried up to ``MAX_ATTEMPTS`` times over about a day (1 min, 5 min, 30 min,
2 h, 6 h, 12 h …), then marked failed. Several instances may run workers: a message is
claimed by moving its ``next_attempt_at`` forward in the same UPDATE that checks it is
still due, so only one instance sends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

import aiosmtplib
from sqlalchemy import select, update

from keyguard.clock import utc_from_ts
from keyguard.context import ServiceContext
from keyguard.mail import smtp
from keyguard.mail.models import MailMessage
from keyguard.mail.outbox import FAILED, PENDING, SENT

log = logging.getLogger("keyguard.mail")

MAX_ATTEMPTS = 8
BACKOFF = (60, 300, 1800, 7200, 21600, 43200, 43200)
LEASE = timedelta(minutes=2)  # a claimed message is not claimed again meanwhile
BATCH = 20


def sender_address(ctx: ServiceContext) -> str:
    if ctx.settings.mail_from:
        return ctx.settings.mail_from
    host = ctx.settings.public_base_url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
    return f"Keyguard <keyguard@{host.strip('[]')}>"


async def send_due(ctx: ServiceContext) -> int:
    """Send what is due now; how many were sent."""
    if not ctx.settings.smtp_url:
        return 0
    target = smtp.SmtpTarget.parse(ctx.settings.smtp_url)
    now = utc_from_ts(ctx.clock.now())
    async with ctx.sessions() as db:
        due = (
            (
                await db.execute(
                    select(MailMessage.id)
                    .where(MailMessage.status == PENDING, MailMessage.next_attempt_at <= now)
                    .order_by(MailMessage.next_attempt_at)
                    .limit(BATCH)
                )
            )
            .scalars()
            .all()
        )
    sent = 0
    for message_id in due:
        async with ctx.transaction() as db:
            claimed = await db.execute(
                update(MailMessage)
                .where(
                    MailMessage.id == message_id,
                    MailMessage.status == PENDING,
                    MailMessage.next_attempt_at <= now,
                )
                .values(next_attempt_at=now + LEASE)
            )
            if not getattr(claimed, "rowcount", 0):
                continue  # another instance has it
            message = await db.get(MailMessage, message_id)
        if message is None:  # pragma: no cover - rows are never deleted
            continue
        error: str | None = None
        hopeless = False
        try:
            await smtp.send(
                target, sender_address(ctx), message.to_address, message.subject, message.body
            )
        except (smtp.Unsendable, ValueError, TypeError, AttributeError) as exc:
            # The message itself is broken (a header that cannot be written): give up on
            # it now rather than retry it for ever in front of the others.
            error, hopeless = type(exc).__name__, True
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            error = type(exc).__name__
        except Exception as exc:  # one message never stops the others
            error = type(exc).__name__
        finished = utc_from_ts(ctx.clock.now())
        async with ctx.transaction() as db:
            row = await db.get(MailMessage, message_id, with_for_update=True)
            if row is None:  # pragma: no cover
                continue
            row.attempts += 1
            if error is None:
                row.status, row.sent_at, row.last_error = SENT, finished, None
                sent += 1
            else:
                row.last_error = error
                if hopeless or row.attempts >= MAX_ATTEMPTS:
                    row.status = FAILED
                else:
                    delay = BACKOFF[min(row.attempts - 1, len(BACKOFF) - 1)]
                    row.next_attempt_at = finished + timedelta(seconds=delay)
                log.warning("email %s not sent (attempt %d): %s", row.id, row.attempts, error)
    return sent


class MailWorker:
    def __init__(self, ctx: ServiceContext, *, interval: float = 1.0) -> None:
        self._ctx = ctx
        self._interval = interval
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[MailWorker]:
        task = asyncio.get_running_loop().create_task(self._loop())
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        while True:
            try:
                await send_due(self._ctx)
            except Exception as exc:  # sending mail must never take the server down
                log.warning("mail worker failed: %s", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
