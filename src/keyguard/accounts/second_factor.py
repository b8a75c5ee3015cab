"""Two-factor sign-in: a TOTP authenticator and ten single-use recovery codes.

- Enrolment stores the secret sealed but not yet active; a correct code activates it
  and returns the recovery codes, shown once. Until then sign-in is unchanged.
- Each TOTP time step is accepted once per account (the step is claimed in the shared
  replay store, like a key's TOTP), wrong codes are throttled like passwords, and only
  ASCII digits count (full-width digits, U+FF10 to U+FF19, are refused, never
  normalised).
- Recovery codes are 50 random bits each, stored as HMAC-SHA256 under a subkey of the
  master key; spending one is a single conditional UPDATE, so two requests racing with
  the same code cannot both succeed. Regenerating deletes the old ones.
- Turning two-factor off needs a current code.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from keyguard.accounts import notices
from keyguard.accounts.context import AccountContext
from keyguard.accounts.errors import SecondFactorInvalid
from keyguard.accounts.models import Account, RecoveryCode
from keyguard.audit import service as audit
from keyguard.clock import utc_from_ts
from keyguard.crypto.totp import TotpKey, new_totp_secret, provisioning_uri, qr_svg
from keyguard.engine.totp_guard import TotpGuard
from keyguard.errors import Conflict, NotFound, TotpInvalid

TOTP_ISSUER = "Keyguard"
RECOVERY_CODES = 10
_CODE_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # no 0/o, 1/l: read aloud, typed by hand


@dataclass(frozen=True, slots=True, repr=False)
class Enrolment:
    secret: str  # shown once, as text beside the QR code
    otpauth_uri: str
    qr_svg: str

    def __repr__(self) -> str:
        return "Enrolment(<redacted>)"


@dataclass(frozen=True, slots=True, repr=False)
class RecoveryCodes:
    codes: tuple[str, ...]  # shown once

    def __repr__(self) -> str:
        return f"RecoveryCodes(<{len(self.codes)} redacted>)"


def _context(account_id: str) -> str:
    return f"account-totp:{account_id}"


def new_recovery_code() -> str:
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


def _normalise_code(code: str) -> str | None:
    """Lower-case ASCII without spaces or dashes; None when it cannot be a code."""
    if not code.isascii():
        return None
    cleaned = code.replace("-", "").replace(" ", "").strip().lower()
    return cleaned if len(cleaned) == 10 and all(c in _CODE_ALPHABET for c in cleaned) else None


def recovery_hash(ctx: AccountContext, account_id: str, code: str) -> str:
    message = f"{account_id}:{code}".encode()
    return hmac.new(ctx.account_keys.recovery, message, hashlib.sha256).hexdigest()


def _guard(ctx: AccountContext) -> TotpGuard:
    return TotpGuard(ctx.state, ctx.clock)


async def start_enrolment(ctx: AccountContext, account_id: str) -> Enrolment:
    secret = new_totp_secret()
    async with ctx.transaction() as db:
        account = await db.get(Account, account_id, with_for_update=True)
        if account is None:
            raise NotFound()
        if account.totp_enabled_at is not None:
            raise Conflict("two-factor authentication is already on")
        account.totp_secret_sealed = ctx.envelope.seal(secret, context=_context(account_id))
        email = account.email
    uri = provisioning_uri(secret, account_name=email, issuer=TOTP_ISSUER)
    return Enrolment(secret, uri, qr_svg(uri))


async def pending_enrolment(ctx: AccountContext, account_id: str) -> Enrolment | None:
    """The enrolment started and not yet confirmed (to show the same QR code again)."""
    async with ctx.sessions() as db:
        account = await db.get(Account, account_id)
    if account is None or account.totp_enabled_at or not account.totp_secret_sealed:
        return None
    secret = ctx.envelope.open(account.totp_secret_sealed, context=_context(account_id))
    uri = provisioning_uri(secret, account_name=account.email, issuer=TOTP_ISSUER)
    return Enrolment(secret, uri, qr_svg(uri))


async def _check_totp(ctx: AccountContext, account: Account, code: str) -> None:
    """Match and spend ``code`` (``SecondFactorInvalid`` / ``RateLimited``)."""
    if not account.totp_secret_sealed:
        raise SecondFactorInvalid()
    secret = ctx.envelope.open(account.totp_secret_sealed, context=_context(account.id))
    guard = _guard(ctx)
    subject = f"acct:{account.id}"  # its own namespace beside keys' ids
    try:
        totp = TotpKey(secret)
        await guard.claim(subject, totp, await guard.match(subject, totp, code.strip()))
    except TotpInvalid:
        raise SecondFactorInvalid() from None


async def confirm_enrolment(
    ctx: AccountContext, account_id: str, code: str, *, actor: str
) -> RecoveryCodes:
    async with ctx.sessions() as db:
        account = await db.get(Account, account_id)
    if account is None:
        raise NotFound()
    if account.totp_enabled_at is not None:
        raise Conflict("two-factor authentication is already on")
    await _check_totp(ctx, account, code)
    now = utc_from_ts(ctx.clock.now())
    codes = tuple(new_recovery_code() for _ in range(RECOVERY_CODES))
    async with ctx.transaction() as db:
        locked = await db.get(Account, account_id, with_for_update=True)
        if locked is None or locked.totp_secret_sealed != account.totp_secret_sealed:
            raise Conflict("the enrolment changed meanwhile: start again")
        locked.totp_enabled_at = now
        await _replace_codes(ctx, db, account_id, codes, now)
        await audit.record(
            db, at=now, actor=actor, action="account.two_factor_enabled", target=account_id
        )
        await notices.credential_changed(db, ctx, account_id, "two_factor_enabled")
    return RecoveryCodes(codes)


async def _replace_codes(
    ctx: AccountContext,
    db: AsyncSession,
    account_id: str,
    codes: tuple[str, ...],
    now: datetime,
) -> None:
    await db.execute(delete(RecoveryCode).where(RecoveryCode.account_id == account_id))
    for code in codes:
        db.add(
            RecoveryCode(
                account_id=account_id,
                code_hash=recovery_hash(ctx, account_id, code.replace("-", "")),
                created_at=now,
            )
        )


async def regenerate_codes(ctx: AccountContext, account_id: str, *, actor: str) -> RecoveryCodes:
    """Ten new codes; every old one stops working in the same transaction."""
    now = utc_from_ts(ctx.clock.now())
    codes = tuple(new_recovery_code() for _ in range(RECOVERY_CODES))
    async with ctx.transaction() as db:
        account = await db.get(Account, account_id, with_for_update=True)
        if account is None or account.totp_enabled_at is None:
            raise Conflict("turn on two-factor authentication first")
        await _replace_codes(ctx, db, account_id, codes, now)
        await audit.record(
            db, at=now, actor=actor, action="account.recovery_codes_regenerated", target=account_id
        )
        await notices.credential_changed(db, ctx, account_id, "recovery_codes_regenerated")
    return RecoveryCodes(codes)


async def remaining_codes(ctx: AccountContext, account_id: str) -> int:
    async with ctx.sessions() as db:
        query = select(func.count()).where(
            RecoveryCode.account_id == account_id, RecoveryCode.used_at.is_(None)
        )
        return int((await db.execute(query)).scalar_one())


async def disable(ctx: AccountContext, account_id: str, code: str, *, actor: str) -> None:
    """Turn two-factor off: needs a current TOTP code (not a recovery code)."""
    async with ctx.sessions() as db:
        account = await db.get(Account, account_id)
    if account is None:
        raise NotFound()
    if account.totp_enabled_at is None:
        return
    await _check_totp(ctx, account, code)
    now = utc_from_ts(ctx.clock.now())
    async with ctx.transaction() as db:
        locked = await db.get(Account, account_id, with_for_update=True)
        if locked is None:
            raise NotFound()
        locked.totp_enabled_at = None
        locked.totp_secret_sealed = None
        await db.execute(delete(RecoveryCode).where(RecoveryCode.account_id == account_id))
        await audit.record(
            db, at=now, actor=actor, action="account.two_factor_disabled", target=account_id
        )
        await notices.credential_changed(db, ctx, account_id, "two_factor_disabled")


async def verify_sign_in_code(ctx: AccountContext, account_id: str, code: str) -> str:
    """Check the second factor of a sign-in: a TOTP code, or a recovery code (spent).
    Returns which one was used ("totp" or "recovery_code")."""
    async with ctx.sessions() as db:
        account = await db.get(Account, account_id)
    if account is None or account.totp_enabled_at is None:
        raise SecondFactorInvalid()
    candidate = code.strip()
    if len(candidate) <= 8:  # TOTP codes are 6 digits; recovery codes 10 letters
        await _check_totp(ctx, account, candidate)
        return "totp"
    normalised = _normalise_code(candidate)
    if normalised is None:
        raise SecondFactorInvalid()
    now = utc_from_ts(ctx.clock.now())
    async with ctx.transaction() as db:
        spent = await db.execute(
            update(RecoveryCode)
            .where(
                RecoveryCode.account_id == account_id,
                RecoveryCode.code_hash == recovery_hash(ctx, account_id, normalised),
                RecoveryCode.used_at.is_(None),
            )
            .values(used_at=now)
        )
        if not getattr(spent, "rowcount", 0):
            raise SecondFactorInvalid()
        await audit.record(
            db,
            at=now,
            actor=account_id,
            action="account.recovery_code_used",
            target=account_id,
        )
    return "recovery_code"
