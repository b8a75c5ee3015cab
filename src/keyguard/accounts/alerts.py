"""Login alerts: an email when an account signs in from a new device or a new network.

- A *device* is a browser holding our long-lived device cookie: a random id with an HMAC
  under a subkey of the master key (forged or altered cookies count as no cookie). The
  account remembers the SHA-256 of each device id it signed in from.
- A *network* is the sign-in address's /24 (IPv4) or /48 (IPv6).
- A sign-in from a device or network the account has not seen sends one email (time, IP,
  browser, and the link to the sessions page), queued in the sign-in's transaction and
  sent by the mail worker. The very first sign-in of an account has nothing to compare
  with and sends none. A repeat sign-in from a known device and network sends nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from keyguard.accounts.context import AccountContext
from keyguard.accounts.models import Account, KnownDevice, KnownNetwork
from keyguard.accounts.sessions import Client
from keyguard.accounts.useragent import describe
from keyguard.audit import service as audit
from keyguard.engine.ipallow import network_of
from keyguard.i18n import DEFAULT_LANGUAGE, translate
from keyguard.mail.outbox import enqueue_mail

DEVICE_COOKIE_DAYS = 400  # the longest a browser keeps a cookie (RFC 6265bis)


def _mac(ctx: AccountContext, device_id: str) -> str:
    digest = hmac.new(ctx.account_keys.device, device_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def new_device_cookie(ctx: AccountContext) -> str:
    device_id = secrets.token_urlsafe(18)
    return f"{device_id}.{_mac(ctx, device_id)}"


def device_id_of(ctx: AccountContext, cookie: str | None) -> str | None:
    """The device id of a genuine device cookie, else None."""
    if not cookie or len(cookie) > 100 or "." not in cookie:
        return None
    device_id, _, mac = cookie.partition(".")
    return device_id if hmac.compare_digest(mac, _mac(ctx, device_id)) else None


def device_hash_of(device_id: str) -> str:
    return hashlib.sha256(device_id.encode()).hexdigest()


async def known_device(
    ctx: AccountContext, account_id: str | None, device_cookie: str | None
) -> str | None:
    """The hash of the browser's device when it has signed in to this account before,
    else None. Queries alike for an unknown account, so the answer's timing says nothing."""
    device_id = device_id_of(ctx, device_cookie)
    if device_id is None:
        return None
    device_hash = device_hash_of(device_id)
    async with ctx.sessions() as db:
        found = await db.execute(
            select(KnownDevice.id).where(
                KnownDevice.account_id == (account_id or ""),
                KnownDevice.device_hash == device_hash,
            )
        )
        return device_hash if found.first() is not None else None


async def note_sign_in(
    db: AsyncSession,
    ctx: AccountContext,
    account: Account,
    client: Client,
    device_cookie: str | None,
    now: datetime,
) -> str | None:
    """Remember this device and network, alert when either is new; in the sign-in's
    transaction. Returns a device cookie to set, when the browser has no valid one."""
    device_id = device_id_of(ctx, device_cookie)
    fresh_cookie = None
    if device_id is None:
        fresh_cookie = new_device_cookie(ctx)
        device_id = fresh_cookie.partition(".")[0]
    device_hash = device_hash_of(device_id)
    network = network_of(client.ip)
    seen_before = (
        await db.execute(
            select(func.count())
            .select_from(KnownDevice)
            .where(KnownDevice.account_id == account.id)
        )
    ).scalar_one()
    device = (
        await db.execute(
            select(KnownDevice).where(
                KnownDevice.account_id == account.id, KnownDevice.device_hash == device_hash
            )
        )
    ).scalar_one_or_none()
    known_network = (
        await db.execute(
            select(KnownNetwork).where(
                KnownNetwork.account_id == account.id, KnownNetwork.network == network
            )
        )
    ).scalar_one_or_none()
    if device is None:
        db.add(
            KnownDevice(
                account_id=account.id,
                device_hash=device_hash,
                first_seen_at=now,
                last_seen_at=now,
            )
        )
    else:
        device.last_seen_at = now
    if known_network is None:
        db.add(
            KnownNetwork(
                account_id=account.id, network=network, first_seen_at=now, last_seen_at=now
            )
        )
    else:
        known_network.last_seen_at = now
    reasons = [
        r for r, new in (("device", device is None), ("network", known_network is None)) if new
    ]
    if seen_before and reasons:
        await _alert(db, ctx, account, client, now, reasons)
    return fresh_cookie


async def _alert(
    db: AsyncSession,
    ctx: AccountContext,
    account: Account,
    client: Client,
    now: datetime,
    reasons: list[str],
) -> None:
    fields = {
        "time": now.strftime("%Y-%m-%d %H:%M UTC"),
        "ip": client.ip,
        "browser": describe(client.user_agent),
        "sessions_url": f"{ctx.settings.public_base_url}/account/sessions",
        "email": account.email,
    }
    # Their own setting, never the language of whoever signed in.
    language = account.language or DEFAULT_LANGUAGE
    body = "\n".join(
        translate(key, language, **fields)
        for key in (
            "mail.login_alert.greeting",
            "mail.login_alert.what",
            "mail.login_alert.time",
            "mail.login_alert.ip",
            "mail.login_alert.browser",
            "mail.login_alert.check",
            "mail.login_alert.not_you",
        )
    )
    enqueue_mail(
        db,
        ctx,
        to=account.email,
        subject=translate("mail.login_alert.subject", language),
        body=body,
        kind="login_alert",
        account_id=account.id,
    )
    await audit.record(
        db,
        at=now,
        actor=account.id,
        action="account.login_alert_sent",
        target=account.id,
        data={"new": reasons, "network": network_of(client.ip)},
    )
