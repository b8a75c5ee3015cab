"""A message that can never be sent is given up at once and never holds up the others."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import select

from keyguard.mail.models import MailMessage
from keyguard.mail.outbox import FAILED, SENT, enqueue_mail
from keyguard.mail.worker import send_due
from keyguard.runtime import Runtime
from keyguard.settings import Settings
from smtp_sink import LoopbackController


class Inbox:
    def __init__(self) -> None:
        self.to: list[list[str]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.to.append(list(envelope.rcpt_tos))
        return "250 OK"


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    box = Inbox()
    controller = LoopbackController(box, hostname="127.0.0.1", port=0)
    controller.start()
    yield box, controller.port
    controller.stop()


@pytest.fixture
def settings(settings: Settings, inbox) -> Settings:
    return settings.model_copy(update={"smtp_url": f"smtp://127.0.0.1:{inbox[1]}"})


@pytest.mark.parametrize("broken", ["a@[b.c", "a@b.c, c@d.e", "x\nBcc: c@d.e"])
async def test_a_broken_message_fails_once_and_the_next_one_is_sent(
    runtime: Runtime, inbox, broken
):
    async with runtime.transaction() as db:
        enqueue_mail(db, runtime, to=broken, subject="S", body="B", kind="test")
    async with runtime.transaction() as db:
        enqueue_mail(db, runtime, to="ops@example.com", subject="S", body="B", kind="test")
    assert await send_due(runtime) == 1
    async with runtime.sessions() as db:
        rows = {m.to_address: m for m in (await db.execute(select(MailMessage))).scalars()}
    assert rows[broken].status == FAILED
    assert rows[broken].attempts == 1
    assert rows["ops@example.com"].status == SENT
    assert inbox[0].to == [["ops@example.com"]]
