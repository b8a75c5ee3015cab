"""What the mail services hand the edges: frozen views, never ORM rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from keyguard.mail.models import MailMessage


@dataclass(frozen=True, slots=True)
class MailView:
    id: str
    to_address: str
    subject: str
    body: str
    kind: str
    status: str
    created_at: datetime
    sent_at: datetime | None

    @classmethod
    def of(cls, row: MailMessage) -> MailView:
        return cls(
            row.id,
            row.to_address,
            row.subject,
            row.body,
            row.kind,
            row.status,
            row.created_at,
            row.sent_at,
        )
