"""Reading the outbox: a person's own emails, for the UI (embedded mode has no SMTP)."""

from __future__ import annotations

from sqlalchemy import select

from keyguard.context import ServiceContext
from keyguard.mail.models import MailMessage
from keyguard.mail.views import MailView


async def for_account(ctx: ServiceContext, account_id: str, *, limit: int = 50) -> list[MailView]:
    async with ctx.sessions() as db:
        rows = await db.execute(
            select(MailMessage)
            .where(MailMessage.account_id == account_id)
            .order_by(MailMessage.created_at.desc(), MailMessage.id.desc())
            .limit(limit)
        )
        return [MailView.of(row) for row in rows.scalars()]
