"""Telling the owner when a way into their account changed (ASVS 2.2.3, NIST SP 800-63B
§6.1.2): password, two-factor, recovery codes, passkeys. Someone who got hold of a fresh
session could otherwise add their own passkey or take the recovery codes unseen."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from keyguard.accounts.context import AccountContext
from keyguard.accounts.models import Account
from keyguard.clock import utc_from_ts
from keyguard.i18n import translate
from keyguard.mail.outbox import enqueue_mail

CHANGES = (
    "password_changed",
    "two_factor_enabled",
    "two_factor_disabled",
    "recovery_codes_regenerated",
    "passkey_added",
    "passkey_removed",
)


async def credential_changed(
    db: AsyncSession, ctx: AccountContext, account_id: str, change: str
) -> None:
    """Queue the notice in the change's transaction (sent only if the change commits)."""
    assert change in CHANGES
    account = await db.get(Account, account_id)
    if account is None:  # pragma: no cover - accounts are never deleted
        return
    when = utc_from_ts(ctx.clock.now()).strftime("%Y-%m-%d %H:%M UTC")
    # The person made the change themselves: their setting, else the page's language.
    language = account.language
    enqueue_mail(
        db,
        ctx,
        to=account.email,
        subject=translate(f"mail.changed.{change}", language),
        body=translate(
            "mail.changed.body",
            language,
            what=translate(f"mail.changed.{change}", language),
            email=account.email,
            time=when,
            sessions_url=f"{ctx.settings.public_base_url}/account/sessions",
        ),
        kind=change,
        account_id=account_id,
    )
