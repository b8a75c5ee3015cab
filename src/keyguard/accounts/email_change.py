"""Changing the account's email: a recent sign-in, then a link to the new address.

The new address is proven before it is used (it will receive login alerts and lock
notices, and it signs in), so the change happens only when the person opens the link
while signed in to the same account. The old address is told, so a takeover that got as
far as a session cannot move the account away silently. Links live ``LINK_SECONDS`` in
the vault (hashed, taken once). An address that already has an account gets a notice
instead of a link, and the page answers the same either way.
"""

from __future__ import annotations

import hashlib
import json
import secrets

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from keyguard.accounts.context import AccountContext
from keyguard.accounts.errors import InvitationInvalid, ReauthenticationRequired
from keyguard.accounts.models import Account
from keyguard.accounts.service import check_email
from keyguard.accounts.sessions import revoke_all
from keyguard.accounts.views import SignedIn
from keyguard.audit import service as audit
from keyguard.clock import utc_from_ts
from keyguard.errors import Conflict, RateLimited, ValidationFailed
from keyguard.i18n import DEFAULT_LANGUAGE, translate
from keyguard.mail.outbox import enqueue_mail

LINK_SECONDS = 24 * 3600
PER_ACCOUNT = (5, 3600)


def _slot(token: str) -> str:
    return "email-change:" + hashlib.sha256(token.encode()).hexdigest()


async def request_change(
    ctx: AccountContext, signed_in: SignedIn, new_email: str, *, recent: bool
) -> None:
    if not recent:
        raise ReauthenticationRequired()
    try:
        email = check_email(new_email)
    except ValidationFailed:
        raise ValidationFailed(translate("members.email_invalid"), field="email") from None
    account = signed_in.account
    if email == account.email:
        raise ValidationFailed(translate("email.same"), field="email")
    asked = await ctx.state.rate_limiter.hit(f"email-change:{account.id}", *PER_ACCOUNT)
    if not asked.allowed:
        raise RateLimited("Too many email changes asked", retry_after=asked.reset_seconds)
    now = utc_from_ts(ctx.clock.now())
    async with ctx.transaction() as db:
        taken = (
            await db.execute(select(Account.id, Account.language).where(Account.email == email))
        ).first()
        if taken is not None:  # to the address's holder: their language, else English
            holder = taken[1] or DEFAULT_LANGUAGE
            subject = translate("mail.email_taken.subject", holder)
            body = translate("mail.email_taken.body", holder)
        else:
            token = secrets.token_urlsafe(32)
            pending = json.dumps({"account_id": account.id, "email": email})
            await ctx.state.vault.put(_slot(token), pending, LINK_SECONDS)
            link = f"{ctx.settings.public_base_url}/account/email/confirm/{token}"
            subject = translate("mail.email_change.subject")
            body = translate("mail.email_change.body", old=account.email, link=link, hours=24)
        enqueue_mail(
            db,
            ctx,
            to=email,
            subject=subject,
            body=body,
            kind="email_change",
        )
        await audit.record(
            db,
            at=now,
            actor=account.id,
            action="account.email_change_requested",
            target=account.id,
            data={"to": email},
        )


async def pending_email(ctx: AccountContext, signed_in: SignedIn, token: str) -> str | None:
    """The address a link would move this account to (None: not this account's link, used
    or expired)."""
    if not token or len(token) > 100:
        return None
    found = await ctx.state.vault.peek(_slot(token))
    if found is None:
        return None
    pending = json.loads(found)
    return str(pending["email"]) if pending["account_id"] == signed_in.account.id else None


async def confirm(ctx: AccountContext, signed_in: SignedIn, token: str) -> str:
    """Move the account to the linked address; ends its other sessions, tells the old
    address. Returns the new address."""
    if await pending_email(ctx, signed_in, token) is None:
        raise InvitationInvalid()
    taken = await ctx.state.vault.take(_slot(token))
    if taken is None:
        raise InvitationInvalid()
    email = str(json.loads(taken)["email"])
    now = utc_from_ts(ctx.clock.now())
    try:
        async with ctx.transaction() as db:
            account = await db.get(Account, signed_in.account.id, with_for_update=True)
            if account is None:  # pragma: no cover - accounts are never deleted
                raise InvitationInvalid()
            old, account.email = account.email, email
            await db.flush()
            ended = await revoke_all(db, account.id, now, keep=signed_in.session.id)
            enqueue_mail(
                db,
                ctx,
                to=old,
                subject=translate("mail.email_changed.subject"),
                body=translate("mail.email_changed.body", old=old, new=email),
                kind="email_changed",
                account_id=account.id,
            )
            await audit.record(
                db,
                at=now,
                actor=account.id,
                action="account.email_changed",
                target=account.id,
                data={"from": old, "to": email, "other_sessions_ended": ended},
            )
    except IntegrityError:  # someone took the address since the link was sent
        raise Conflict(translate("email.taken_since")) from None
    return email
