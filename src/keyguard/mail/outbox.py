"""Queue an email in the caller's transaction: it is sent only if what caused it commits,
and never inline in a request (the worker sends it, with retries)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from keyguard.clock import utc_from_ts
from keyguard.context import ServiceContext
from keyguard.ids import new_id
from keyguard.mail.models import MailMessage

PENDING = "pending"
SENT = "sent"
FAILED = "failed"
# No SMTP server configured (embedded mode): kept for its reader in the UI.
HELD = "held"


def enqueue_mail(
    db: AsyncSession,
    ctx: ServiceContext,
    *,
    to: str,
    subject: str,
    body: str,
    kind: str,
    account_id: str | None = None,
) -> MailMessage:
    """Queue a message: ``pending`` for the worker when SMTP is configured, else ``held``
    for the account's outbox page."""
    now = utc_from_ts(ctx.clock.now())
    message = MailMessage(
        id=new_id("mail"),
        account_id=account_id,
        to_address=to,
        # A header: no line breaks or control characters (a project name is in some).
        subject=" ".join("".join(c if c.isprintable() else " " for c in subject).split())[:200],
        body=body,
        kind=kind,
        status=PENDING if ctx.settings.smtp_url else HELD,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    db.add(message)
    return message
