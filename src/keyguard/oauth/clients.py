"""Who is asking at the token, revocation and introspection endpoints: client records
and client authentication (RFC 6749 §2.3, RFC 9700 §2.5).

Confidential clients authenticate with ``client_secret_basic`` or ``client_secret_post``
(one of them, never both); public clients send only ``client_id``. Failed
authentications are counted per client and per address, and past ``FAILURES`` in
``WINDOW`` seconds the next attempt is refused before any secret is compared, so a
secret cannot be guessed online; the comparison itself is an HMAC compared in constant
time, and an unknown client costs the same as a wrong secret.

Failures are counted per address and per (client, address), never per client alone: a
client id is public (it is in every authorization URL), and a count of its own would let
anyone lock a client out of its tokens with a few wrong secrets from anywhere. A public
client that sends a secret is refused without counting.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote

from sqlalchemy import select

from keyguard.context import ServiceContext
from keyguard.engine.origins import DomainAllowlist
from keyguard.errors import RateLimited
from keyguard.oauth.errors import InvalidClient, InvalidRequest
from keyguard.oauth.models import OAuthApp

FAILURES = 10
WINDOW = 300


@dataclass(frozen=True, slots=True, repr=False)
class ClientRecord:
    app_id: str
    client_id: str
    project_id: str
    name: str
    public: bool
    redirect_uris: tuple[str, ...]
    scopes: tuple[str, ...]
    role_scopes: Mapping[str, Sequence[str]]
    domains: DomainAllowlist
    secret_hash: bytes | None = field(default=None)
    previous_secret_hash: bytes | None = field(default=None)
    previous_secret_until: float | None = None

    def __repr__(self) -> str:
        return f"ClientRecord(client_id={self.client_id!r}, <secrets redacted>)"

    @classmethod
    def of(cls, row: OAuthApp) -> ClientRecord:
        until = row.previous_secret_until
        return cls(
            app_id=row.id,
            client_id=row.client_id,
            project_id=row.project_id,
            name=row.name,
            public=row.public,
            redirect_uris=tuple(row.redirect_uris),
            scopes=tuple(row.scopes),
            role_scopes={k: tuple(v) for k, v in row.role_scopes.items()},
            domains=DomainAllowlist(row.allowed_domains),
            secret_hash=row.secret_hash,
            previous_secret_hash=row.previous_secret_hash,
            previous_secret_until=until.timestamp() if until is not None else None,
        )


async def load_client(ctx: ServiceContext, client_id: str) -> ClientRecord | None:
    """The live app with this client id (from the database: a rotated secret or a
    deleted app counts at once)."""
    if not client_id or len(client_id) > 64:
        return None
    async with ctx.sessions() as db:
        row = (
            await db.execute(
                select(OAuthApp).where(
                    OAuthApp.client_id == client_id, OAuthApp.deleted_at.is_(None)
                )
            )
        ).scalar_one_or_none()
    return None if row is None else ClientRecord.of(row)


@dataclass(frozen=True, slots=True, repr=False)
class PresentedClient:
    client_id: str
    secret: str | None
    method: str  # client_secret_basic | client_secret_post | none

    def __repr__(self) -> str:
        return f"PresentedClient({self.client_id!r}, {self.method}, <secret redacted>)"


def presented_client(authorization: str | None, form: Mapping[str, str]) -> PresentedClient:
    """The client's credentials from the ``Authorization`` header or the form body."""
    form_id, form_secret = form.get("client_id") or None, form.get("client_secret") or None
    if authorization is not None:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() != "basic":
            raise InvalidClient("use HTTP Basic or the form for client authentication")
        if form_secret is not None:
            raise InvalidRequest("client credentials were sent twice (header and form)")
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise InvalidClient() from None
        raw_id, sep, raw_secret = decoded.partition(":")
        if not sep:
            raise InvalidClient()
        # RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
        client_id, secret = unquote(raw_id.replace("+", " ")), unquote(raw_secret.replace("+", " "))
        if form_id is not None and form_id != client_id:
            raise InvalidRequest("client_id differs between the header and the form")
        return PresentedClient(client_id, secret, "client_secret_basic")
    if form_id is None:
        raise InvalidClient("client authentication is required")
    if form_secret is not None:
        return PresentedClient(form_id, form_secret, "client_secret_post")
    return PresentedClient(form_id, None, "none")


async def authenticate_client(
    ctx: ServiceContext, presented: PresentedClient, *, client_ip: str | None
) -> ClientRecord:
    """The client, if its credentials are right (a public client: its id alone)."""
    limiter = ctx.state.rate_limiter
    address = client_ip or "unknown"
    buckets = (
        f"oauth-client-fail-ip:{address}",
        f"oauth-client-fail:{presented.client_id[:64]}:{address}",
    )
    for bucket in buckets:
        wait = await limiter.blocked(bucket, FAILURES, WINDOW)
        if wait > 0:
            raise RateLimited("too many failed client authentications", retry_after=wait)
    client = await load_client(ctx, presented.client_id)
    if client is not None and client.public and presented.secret is not None:
        raise InvalidClient("a public client has no secret to send")
    if not _authenticates(ctx, client, presented):
        for bucket in buckets:
            await limiter.hit(bucket, FAILURES, WINDOW)
        raise InvalidClient()
    assert client is not None
    return client


def _authenticates(
    ctx: ServiceContext, client: ClientRecord | None, presented: PresentedClient
) -> bool:
    if presented.secret is None:
        # A public client needs no secret; a confidential one must send it.
        return client is not None and client.public
    stored = client.secret_hash if client is not None else None
    right = ctx.hasher.matches(presented.secret, stored)  # None: same work, False
    if not right and client is not None and client.previous_secret_hash is not None:
        until = client.previous_secret_until
        if until is not None and ctx.clock.now() < until:
            right = ctx.hasher.matches(presented.secret, client.previous_secret_hash)
    return right and client is not None and not client.public
