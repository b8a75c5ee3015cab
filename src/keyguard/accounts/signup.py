"""Open sign-up (``KEYGUARD_SIGNUP=open``): an email, a link sent to it, a password.

The address is proven before an account exists: the form only sends a link (valid
``LINK_SECONDS``, taken once, kept hashed in the vault). The page answers the same
whether or not the email already has an account; that person gets a "you already have an
account" email instead of a link, so sign-up cannot be used to find out who has one.
Links are rate limited per IP and per email, so the form cannot be used to flood a
mailbox.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select

from keyguard.accounts.context import AccountContext
from keyguard.accounts.errors import InvitationInvalid, SignUpClosed
from keyguard.accounts.models import Account
from keyguard.accounts.passwords import check_new_password, hash_password
from keyguard.accounts.service import check_email
from keyguard.accounts.sessions import Client
from keyguard.accounts.throttle import address_key
from keyguard.audit import service as audit
from keyguard.clock import utc_from_ts
from keyguard.errors import ValidationFailed
from keyguard.i18n import translate
from keyguard.ids import new_id
from keyguard.mail.outbox import enqueue_mail

LINK_SECONDS = 24 * 3600
PER_IP = (10, 3600)
PER_EMAIL = (3, 3600)


def _slot(token: str) -> str:
    return "signup:" + hashlib.sha256(token.encode()).hexdigest()


async def start(ctx: AccountContext, email: str, client: Client) -> None:
    if ctx.settings.signup != "open":
        raise SignUpClosed()
    try:
        email = check_email(email)
    except ValidationFailed:
        raise ValidationFailed(translate("members.email_invalid"), field="email") from None
    limiter = ctx.state.rate_limiter
    by_ip = await limiter.hit(f"signup:ip:{address_key(client.ip)}", *PER_IP)
    by_email = await limiter.hit(f"signup:email:{email}", *PER_EMAIL)
    if not (by_ip.allowed and by_email.allowed):
        return  # the same answer: nothing tells the caller a limit was reached
    async with ctx.transaction() as db:
        existing = (await db.execute(select(Account.id).where(Account.email == email))).first()
        base = ctx.settings.public_base_url
        if existing is not None:
            subject = translate("mail.signup_exists.subject")
            body = translate("mail.signup_exists.body", link=f"{base}/login")
        else:
            token = secrets.token_urlsafe(32)
            await ctx.state.vault.put(_slot(token), email, LINK_SECONDS)
            subject = translate("mail.signup.subject")
            body = translate("mail.signup.body", link=f"{base}/signup/{token}", hours=24)
        enqueue_mail(
            db,
            ctx,
            to=email,
            subject=subject,
            body=body,
            kind="signup",
        )


async def pending_email(ctx: AccountContext, token: str) -> str | None:
    if not token or len(token) > 100:
        return None
    return await ctx.state.vault.peek(_slot(token))


async def finish(ctx: AccountContext, token: str, password: str) -> str:
    """Create the account the link was sent for; returns its id."""
    email = await pending_email(ctx, token)
    if email is None:
        raise InvitationInvalid()
    password_hash = await hash_password(check_new_password(password, email=email))
    if await ctx.state.vault.take(_slot(token)) is None:  # taken once
        raise InvitationInvalid()
    now = utc_from_ts(ctx.clock.now())
    async with ctx.transaction() as db:
        if (await db.execute(select(Account.id).where(Account.email == email))).first():
            raise InvitationInvalid()
        account = Account(
            id=new_id("acct"), email=email, password_hash=password_hash, created_at=now
        )
        db.add(account)
        await db.flush()
        await audit.record(
            db,
            at=now,
            actor=account.id,
            action="account.created",
            target=account.id,
            data={"signup": "open"},
        )
        return account.id
