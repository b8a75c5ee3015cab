"""Queue an email in the caller's transaction: it is sent only if what caused it commits,
and never inline in a request (the worker sends it, with retries)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from keyguard.ids import new_id
from keyguard.mail.models import MailMessage

PENDING = "pending"
SENT = "sent"
FAILED = "failed"
# No SMTP server configured (embedded mode): kept for its reader in the UI.
HELD = "held"


def enqueue_mail(
    db: AsyncSession,
    *,
    to: str,
    subject: str,
    body: str,
    kind: str,
    now: datetime,
    smtp_configured: bool,
    account_id: str | None = None,
) -> MailMessage:
    message = MailMessage(
        id=new_id("mail"),
        account_id=account_id,
        to_address=to,
        subject=subject[:200],
        body=body,
        kind=kind,
        status=PENDING if smtp_configured else HELD,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    db.add(message)
    return message
