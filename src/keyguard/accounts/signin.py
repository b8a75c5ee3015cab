"""Signing in: the password, then a second factor when the account has one, then a session.

What an attacker can try, and what answers it:

- **Guessing passwords or codes**: :class:`SignInThrottle` per account and per IP, with
  back-off and a lock (and one email to the owner when it locks).
- **Finding out which emails have accounts**: one error for an unknown email and a wrong
  password, the same argon2id work for both (a dummy hash), the same throttle for both,
  and an audit row written for both.
- **Skipping the second factor**: after a correct password with two-factor on, the
  browser gets only a *pending sign-in*, a random token in the state stores valid for five
  minutes and taken once; the session is created only after the code.
- **Session fixation**: each sign-in creates a new session and revokes the one the
  browser presented, if any.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

from sqlalchemy import select, update

from keyguard.accounts import alerts, second_factor, sessions
from keyguard.accounts.context import AccountContext
from keyguard.accounts.errors import SecondFactorInvalid, SignInFailed
from keyguard.accounts.models import Account
from keyguard.accounts.passwords import hash_password, normalise, verify_password
from keyguard.accounts.sessions import Client, NewSession
from keyguard.accounts.throttle import SignInThrottle
from keyguard.accounts.views import SignedIn
from keyguard.audit import service as audit
from keyguard.clock import utc_from_ts
from keyguard.crypto.passwords import account_hash_outdated
from keyguard.i18n import DEFAULT_LANGUAGE, translate
from keyguard.mail.outbox import enqueue_mail

PENDING_SECONDS = 300


def normalise_email(email: str) -> str:
    return email.strip().lower()[:320]


@dataclass(frozen=True, slots=True, repr=False)
class SignedInNow:
    """A completed sign-in: the cookies to set."""

    session: NewSession
    device_cookie: str | None  # set when the browser had no valid one

    def __repr__(self) -> str:
        return f"SignedInNow({self.session.session.id})"


@dataclass(frozen=True, slots=True, repr=False)
class SecondFactorNeeded:
    pending_token: str  # for a short-lived cookie only

    def __repr__(self) -> str:
        return "SecondFactorNeeded(<redacted>)"


async def _record_failure(
    ctx: AccountContext, account: Account | None, client: Client, reason: str
) -> None:
    now = utc_from_ts(ctx.clock.now())
    async with ctx.transaction() as db:
        await audit.record(
            db,
            at=now,
            actor=account.id if account else "anonymous",
            action="account.sign_in_failed",
            target=account.id if account else None,
            data={"reason": reason, "ip": client.ip},
        )


async def _lock_notice(ctx: AccountContext, account: Account, client: Client) -> None:
    """One email and audit entry per lock (the replay store makes it once per window)."""
    if not await ctx.state.replay_guard.first_use(f"lock-mail:{account.id}", 15 * 60):
        return
    now = utc_from_ts(ctx.clock.now())
    language = account.language or DEFAULT_LANGUAGE  # not the guesser's browser
    async with ctx.transaction() as db:
        enqueue_mail(
            db,
            ctx,
            to=account.email,
            subject=translate("mail.locked.subject", language),
            body=translate("mail.locked.body", language, ip=client.ip, email=account.email),
            kind="account_locked",
            account_id=account.id,
        )
        await audit.record(
            db,
            at=now,
            actor="anonymous",
            action="account.locked",
            target=account.id,
            data={"ip": client.ip},
        )


async def throttle_subject(
    ctx: AccountContext, email: str, account_id: str | None, device_cookie: str | None
) -> str:
    """What failures are counted against: the email, or, for a browser that has signed in
    to this account before, the email on that device. Anyone can make an email's count
    lock it (ten wrong passwords), but that lock never reaches the owner's own browsers
    (OWASP's "device cookies" defence against lockout attacks)."""
    device = await alerts.known_device(ctx, account_id, device_cookie)
    return email if device is None else f"{email}#device:{device}"


async def _account_by_email(ctx: AccountContext, email: str) -> Account | None:
    async with ctx.sessions() as db:
        found = await db.execute(select(Account).where(Account.email == email))
        return found.scalar_one_or_none()


async def with_password(
    ctx: AccountContext,
    email: str,
    password: str,
    client: Client,
    *,
    device_cookie: str | None = None,
    replaces: str | None = None,
) -> SignedInNow | SecondFactorNeeded:
    email = normalise_email(email)
    throttle = SignInThrottle(ctx.state, ctx.clock)
    account = await _account_by_email(ctx, email)
    subject = await throttle_subject(ctx, email, account.id if account else None, device_cookie)
    await throttle.admit(subject, client.ip)
    if not await verify_password(account.password_hash if account else None, password):
        await throttle.failed(subject, client.ip)
        await _record_failure(ctx, account, client, "password")
        # Told when the failure that locks it happens (not on a later refused attempt,
        # which an attacker who stops at the limit never makes).
        if await throttle.locked(subject) and account is not None:
            await _lock_notice(ctx, account, client)
        raise SignInFailed()
    assert account is not None  # verify_password is False without an account
    await throttle.succeeded(subject)
    await upgrade_hash(ctx, account, password)
    if account.totp_enabled_at is not None:
        token = secrets.token_urlsafe(32)
        pending = {"account_id": account.id, "email": email, "at": ctx.clock.now()}
        await ctx.state.vault.put(f"pending-signin:{token}", json.dumps(pending), PENDING_SECONDS)
        return SecondFactorNeeded(token)
    return await finish(
        ctx, account.id, client, method="password", device_cookie=device_cookie, replaces=replaces
    )


async def upgrade_hash(ctx: AccountContext, account: Account, password: str) -> None:
    """Rehash at today's parameters a password hashed at older ones (it is known right
    now, and only now)."""
    if not account_hash_outdated(account.password_hash):
        return
    new_hash = await hash_password(normalise(password))
    async with ctx.transaction() as db:
        await db.execute(
            update(Account)
            .where(Account.id == account.id, Account.password_hash == account.password_hash)
            .values(password_hash=new_hash)
        )


async def pending_account(ctx: AccountContext, pending_token: str | None) -> str | None:
    """The account a pending sign-in is for (None when missing or expired)."""
    if not pending_token or len(pending_token) > 100:
        return None
    found = await ctx.state.vault.peek(f"pending-signin:{pending_token}")
    return json.loads(found)["account_id"] if found else None


async def with_code(
    ctx: AccountContext,
    pending_token: str | None,
    code: str,
    client: Client,
    *,
    device_cookie: str | None = None,
    replaces: str | None = None,
) -> SignedInNow:
    """Complete a pending sign-in with a TOTP or recovery code."""
    account_id = await pending_account(ctx, pending_token)
    if account_id is None:
        raise SecondFactorInvalid()
    throttle = SignInThrottle(ctx.state, ctx.clock, what="code")
    await throttle.admit(account_id, client.ip)
    try:
        method = await second_factor.verify_sign_in_code(ctx, account_id, code)
    except SecondFactorInvalid:
        await throttle.failed(account_id, client.ip)
        async with ctx.sessions() as db:
            account = await db.get(Account, account_id)
        await _record_failure(ctx, account, client, "second_factor")
        raise
    # Taken once: two browsers racing with the same pending token cannot both finish.
    if await ctx.state.vault.take(f"pending-signin:{pending_token}") is None:
        raise SecondFactorInvalid()
    await throttle.succeeded(account_id)
    return await finish(
        ctx,
        account_id,
        client,
        method=f"password+{method}",
        device_cookie=device_cookie,
        replaces=replaces,
    )


async def finish(
    ctx: AccountContext,
    account_id: str,
    client: Client,
    *,
    method: str,
    device_cookie: str | None,
    replaces: str | None,
) -> SignedInNow:
    """Create the session, remember the device and network (alerting when new), audit."""
    now = utc_from_ts(ctx.clock.now())
    async with ctx.transaction() as db:
        account = await db.get(Account, account_id, with_for_update=True)
        if account is None:  # pragma: no cover - accounts are never deleted
            raise SignInFailed()
        new = await sessions.start(db, ctx, account_id, client, method=method, replaces=replaces)
        cookie = await alerts.note_sign_in(db, ctx, account, client, device_cookie, now)
        await audit.record(
            db,
            at=now,
            actor=account_id,
            action="account.signed_in",
            target=account_id,
            data={"method": method, "ip": client.ip, "session_id": new.session.id},
        )
    return SignedInNow(new, cookie)


async def sign_out(ctx: AccountContext, token: str | None) -> None:
    signed_in = await sessions.resolve(ctx, token)
    if signed_in is None:
        return
    await sessions.revoke(
        ctx,
        signed_in.account.id,
        signed_in.session.id,
        actor=signed_in.account.id,
        reason="signed_out",
    )


def _session_subject(signed_in: SignedIn) -> str:
    # A signed-in person's guesses count against their session: a thief holding one gets
    # LOCK_AFTER guesses, and a stranger locking the email does not stop its owner here.
    return f"{signed_in.account.email}#session:{signed_in.session.id}"


async def _prove_password(
    ctx: AccountContext,
    throttle: SignInThrottle,
    signed_in: SignedIn,
    password: str,
    client: Client,
    reason: str,
) -> Account:
    subject = _session_subject(signed_in)
    await throttle.admit(subject, client.ip)
    async with ctx.sessions() as db:
        account = await db.get(Account, signed_in.account.id)
    if account is None or not await verify_password(account.password_hash, password):
        await throttle.failed(subject, client.ip)
        await _record_failure(ctx, account, client, reason)
        raise SignInFailed()
    return account


async def check_current_password(
    ctx: AccountContext, signed_in: SignedIn, password: str, client: Client
) -> None:
    """The signed-in person's current password (to change it): throttled and audited
    like any other password check, so it is no free guessing oracle."""
    throttle = SignInThrottle(ctx.state, ctx.clock)
    await _prove_password(ctx, throttle, signed_in, password, client, "password_change")
    await throttle.succeeded(_session_subject(signed_in))


async def reauthenticate(
    ctx: AccountContext,
    signed_in: SignedIn,
    password: str,
    code: str | None,
    client: Client,
) -> str:
    """Prove it is still the person (password, and a code when two-factor is on) before a
    sensitive change; throttled and audited like a sign-in. Returns the session's new
    token (the session is rotated)."""
    throttle = SignInThrottle(ctx.state, ctx.clock)
    subject = _session_subject(signed_in)
    account = await _prove_password(ctx, throttle, signed_in, password, client, "reauthentication")
    if account.totp_enabled_at is not None:
        try:
            await second_factor.verify_sign_in_code(ctx, account.id, code or "")
        except SecondFactorInvalid:
            await throttle.failed(subject, client.ip)
            await _record_failure(ctx, account, client, "reauthentication")
            raise
    await throttle.succeeded(subject)
    now = utc_from_ts(ctx.clock.now())
    async with ctx.transaction() as db:
        token = await sessions.reauthenticated(db, signed_in.session.id, now)
        await audit.record(
            db, at=now, actor=account.id, action="account.reauthenticated", target=account.id
        )
    return token
