"""Send one email over SMTP (aiosmtplib): ``KEYGUARD_SMTP_URL`` says where and how.

- ``smtp://[user:password@]host[:port]``: plain connection, upgraded with STARTTLS when
  the server offers it (port 587 or 25); ``?starttls=require`` refuses a server that
  does not offer it.
- ``smtps://…``: TLS from the first byte (port 465).
- ``?ca=/path/to/ca.pem`` trusts that CA (a relay with an internal certificate) instead
  of the system's. Certificates are always verified: there is no switch to turn that off.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import getaddresses
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib


@dataclass(frozen=True, slots=True, repr=False)
class SmtpTarget:
    host: str
    port: int
    implicit_tls: bool
    require_starttls: bool
    username: str | None
    password: str | None
    ca_file: str | None

    def __repr__(self) -> str:  # the URL may carry a password
        return f"SmtpTarget({self.host}:{self.port})"

    @classmethod
    def parse(cls, url: str) -> SmtpTarget:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("KEYGUARD_SMTP_URL must look like smtp://host:587 or smtps://host")
        query = parse_qs(parts.query)
        implicit = parts.scheme == "smtps"
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if implicit else 587),
            implicit_tls=implicit,
            require_starttls=query.get("starttls", [""])[0] == "require",
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            ca_file=query.get("ca", [None])[0],
        )


def _start_tls(target: SmtpTarget) -> bool | None:
    """None: STARTTLS when the server offers it; True: refuse a server that does not."""
    if target.implicit_tls:
        return False  # already TLS
    return True if target.require_starttls else None


class Unsendable(ValueError):
    """A message that can never be sent as it is (retrying will not help)."""


async def send(target: SmtpTarget, sender: str, to: str, subject: str, body: str) -> None:
    # Exactly one recipient, named explicitly: never the header's reading of ``to``.
    if getaddresses([to]) != [("", to)]:
        raise Unsendable("the recipient is not one plain address")
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    context = ssl.create_default_context(cafile=target.ca_file)
    await aiosmtplib.send(
        message,
        recipients=[to],
        hostname=target.host,
        port=target.port,
        username=target.username,
        password=target.password,
        use_tls=target.implicit_tls,
        start_tls=_start_tls(target),
        tls_context=context,
        timeout=30,
    )
