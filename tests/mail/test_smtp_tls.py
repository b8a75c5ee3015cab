"""Mail goes over TLS whenever the server offers STARTTLS, with the certificate verified;
``?starttls=require`` refuses a server that does not offer it; the password in the URL
never prints."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import aiosmtplib
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from keyguard.crypto.tls import ensure_dev_certificates
from keyguard.mail.smtp import SmtpTarget, Unsendable, send
from smtp_sink import LoopbackController


class TlsInbox:
    def __init__(self) -> None:
        self.received: list[tuple[bool, Envelope]] = []  # (over TLS?, envelope)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.received.append((session.ssl is not None, envelope))
        return "250 OK"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory):
    return ensure_dev_certificates(tmp_path_factory.mktemp("smtp-tls"))


def serve(inbox: TlsInbox, tls: ssl.SSLContext | None) -> LoopbackController:
    extra = {"tls_context": tls, "require_starttls": True} if tls else {}
    controller = LoopbackController(inbox, hostname="127.0.0.1", port=0, **extra)
    controller.start()
    return controller


@pytest.fixture
def starttls_server(certificates) -> Iterator[tuple[TlsInbox, int]]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificates.server_cert, certificates.server_key)
    inbox = TlsInbox()
    controller = serve(inbox, context)
    yield inbox, controller.port
    controller.stop()


@pytest.fixture
def plain_server() -> Iterator[tuple[TlsInbox, int]]:
    inbox = TlsInbox()
    controller = serve(inbox, None)
    yield inbox, controller.port
    controller.stop()


async def mail(url: str) -> None:
    await send(SmtpTarget.parse(url), "keyguard@localhost", "ops@example.com", "Hi", "Body")


async def test_starttls_is_used_when_the_server_offers_it(starttls_server, certificates):
    inbox, port = starttls_server
    # "localhost": the name in the development certificate.
    await mail(f"smtp://localhost:{port}?ca={certificates.ca_cert}")
    assert [over_tls for over_tls, _ in inbox.received] == [True]


async def test_a_certificate_from_an_unknown_ca_is_refused(starttls_server):
    inbox, port = starttls_server
    with pytest.raises((aiosmtplib.SMTPException, ssl.SSLError)):
        await mail(f"smtp://localhost:{port}")  # the system CAs do not know Keyguard's
    assert inbox.received == []


async def test_require_refuses_a_server_without_starttls(plain_server):
    inbox, port = plain_server
    with pytest.raises(aiosmtplib.SMTPException):
        await mail(f"smtp://localhost:{port}?starttls=require")
    assert inbox.received == []


async def test_without_starttls_on_offer_mail_goes_in_the_clear_by_default(plain_server):
    inbox, port = plain_server
    await mail(f"smtp://localhost:{port}")
    assert [over_tls for over_tls, _ in inbox.received] == [False]


def test_the_url_password_never_prints(tmp_path: Path):
    target = SmtpTarget.parse("smtps://mailer:hunter2-secret@mail.example.com?ca=/etc/ca.pem")
    assert "hunter2" not in repr(target)
    assert "hunter2" not in str(target)
    assert (target.host, target.port, target.implicit_tls) == ("mail.example.com", 465, True)
    assert target.ca_file == "/etc/ca.pem"


@pytest.mark.parametrize(
    "to", ["victim@example.org, attacker@evil.example", "Name <a@example.org>", "(x)a@b.org"]
)
async def test_a_message_goes_to_its_one_recipient_or_nowhere(plain_server, to):
    inbox, port = plain_server
    with pytest.raises(Unsendable):
        await send(SmtpTarget.parse(f"smtp://localhost:{port}"), "k@localhost", to, "S", "B")
    assert inbox.received == []
