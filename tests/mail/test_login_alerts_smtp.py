"""Login alerts reach the account's owner over real SMTP: one email for a sign-in from a
new device, none for a repeat from a known one, and an alert that waits in the outbox
(never lost) while the SMTP server is down."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as email_policy
from typing import cast

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import select

from account_pages import ADMIN_EMAIL, ADMIN_PASSWORD, csrf_of, sign_in
from keyguard.accounts.pages import DEVICE_COOKIE
from keyguard.app import create_asgi
from keyguard.mail.models import MailMessage
from keyguard.mail.outbox import PENDING, SENT
from keyguard.mail.worker import send_due
from keyguard.runtime import Runtime
from keyguard.settings import Settings
from keyguard.wire import SESSION_COOKIE
from smtp_sink import LoopbackController

PUBLIC_URL = "https://keyguard.example.com"
# A fixed instant, so the email's time can be spelled out: 2031-03-14 09:26 UTC.
SIGN_IN_AT = datetime(2031, 3, 14, 9, 26, 53, tzinfo=UTC).timestamp()
FIREFOX_ON_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:130.0) Gecko/20100101 Firefox/130.0"
)
# The conftest client signs in from 203.0.113.7; a second browser on the same /24 is a
# new device on a known network.
SAME_NETWORK_IP = "203.0.113.45"


class Inbox:
    """What the SMTP server accepted: every envelope, as delivered."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self) -> list[EmailMessage]:
        return [
            cast(EmailMessage, message_from_bytes(envelope.original_content, policy=email_policy))
            for envelope in self.envelopes
        ]


class SmtpServer:
    """A real SMTP server on loopback that can be taken down and brought back on the same
    port (what Keyguard is configured with)."""

    def __init__(self) -> None:
        self.inbox = Inbox()
        self._controller: Controller | None = None
        self.port = 0

    def start(self) -> None:
        controller = LoopbackController(self.inbox, hostname="127.0.0.1", port=self.port)
        controller.start()
        self._controller, self.port = controller, controller.port

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def settings(settings: Settings, smtp_server: SmtpServer) -> Settings:
    return settings.model_copy(
        update={"smtp_url": f"smtp://127.0.0.1:{smtp_server.port}", "public_url": PUBLIC_URL}
    )


@pytest.fixture
async def firefox(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """A second browser (its own cookie jar: no device cookie yet) on the same network."""
    transport = httpx.ASGITransport(app=create_asgi(runtime), client=(SAME_NETWORK_IP, 40000))
    async with httpx.AsyncClient(
        transport=transport,
        base_url="https://testserver",
        headers={"user-agent": FIREFOX_ON_WINDOWS},
    ) as other:
        yield other


async def outbox(runtime: Runtime) -> list[MailMessage]:
    async with runtime.sessions() as db:
        rows = await db.execute(select(MailMessage).order_by(MailMessage.created_at))
        return list(rows.scalars())


async def signed_in(client: httpx.AsyncClient) -> None:
    response = await sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert response.status_code == 303, response.text
    assert SESSION_COOKIE in client.cookies


async def signed_out(client: httpx.AsyncClient) -> None:
    page = await client.get("/account/security")
    response = await client.post("/logout", data={"csrf_token": csrf_of(page.text)})
    assert response.headers["location"] == "/login?flash=signed_out"


async def first_sign_in_then_a_new_device(
    client: httpx.AsyncClient, firefox: httpx.AsyncClient, runtime: Runtime, clock
) -> None:
    """The account's first-ever sign-in (nothing to compare with: no alert), then one from
    a second browser on the same network, at SIGN_IN_AT."""
    await signed_in(client)
    assert await outbox(runtime) == []
    clock.advance(SIGN_IN_AT - clock.now())
    await signed_in(firefox)


async def test_a_new_device_gets_one_alert_over_smtp_with_time_ip_browser_and_link(
    client, firefox, admin, runtime, clock, smtp_server
):
    await first_sign_in_then_a_new_device(client, firefox, runtime, clock)
    # Queued in the sign-in's transaction, not sent inside the request.
    assert smtp_server.inbox.envelopes == []
    assert await send_due(runtime) == 1

    [envelope] = smtp_server.inbox.envelopes
    assert envelope.rcpt_tos == [ADMIN_EMAIL]
    [message] = smtp_server.inbox.messages()
    assert message["To"] == ADMIN_EMAIL
    assert message["From"] == "Keyguard <keyguard@keyguard.example.com>"
    assert message["Subject"] == "New sign-in to your Keyguard account"
    body = message.get_content()
    assert "Time: 2031-03-14 09:26 UTC" in body
    assert f"IP address: {SAME_NETWORK_IP}" in body
    assert "Browser: Firefox on Windows" in body
    assert f"{PUBLIC_URL}/account/sessions" in body
    [row] = await outbox(runtime)
    assert (row.kind, row.status, row.to_address) == ("login_alert", SENT, ADMIN_EMAIL)


async def test_a_repeat_sign_in_from_a_known_device_and_network_sends_nothing(
    client, firefox, admin, runtime, clock, smtp_server
):
    await first_sign_in_then_a_new_device(client, firefox, runtime, clock)
    assert await send_due(runtime) == 1
    # The same browser (it holds the device cookie now), same address, again.
    assert DEVICE_COOKIE in firefox.cookies
    await signed_out(firefox)
    await signed_in(firefox)
    # And the very first browser, back (its session ended while idle, years ago).
    await signed_in(client)
    assert await send_due(runtime) == 0
    assert len(smtp_server.inbox.envelopes) == 1
    assert [row.kind for row in await outbox(runtime)] == ["login_alert"]


async def test_an_alert_waits_in_the_outbox_while_smtp_is_down_and_is_sent_later(
    client, firefox, admin, runtime, clock, smtp_server, settings
):
    smtp_server.stop()
    await first_sign_in_then_a_new_device(client, firefox, runtime, clock)
    [queued] = await outbox(runtime)
    assert (queued.kind, queued.status, queued.attempts) == ("login_alert", PENDING, 0)

    # The server refuses connections: the attempt fails, the email stays pending with
    # its error and a retry time after a back-off.
    assert await send_due(runtime) == 0
    [failed] = await outbox(runtime)
    assert (failed.status, failed.attempts) == (PENDING, 1)
    assert failed.last_error
    assert failed.next_attempt_at.timestamp() > clock.now()

    # Back up; the retry waits for its time, then an instance started afresh on the same
    # database (as after a restart) delivers it from the outbox.
    smtp_server.start()
    assert await send_due(runtime) == 0
    assert smtp_server.inbox.envelopes == []
    clock.advance(failed.next_attempt_at.timestamp() - clock.now())
    restarted = await Runtime.start(settings, clock=clock)
    try:
        assert await send_due(restarted) == 1
    finally:
        await restarted.close()
    [message] = smtp_server.inbox.messages()
    assert message["To"] == ADMIN_EMAIL
    assert f"IP address: {SAME_NETWORK_IP}" in message.get_content()
    [sent] = await outbox(runtime)
    assert (sent.id, sent.status, sent.attempts) == (queued.id, SENT, 2)
    assert sent.last_error is None
