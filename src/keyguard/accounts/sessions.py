"""Sign-in sessions, stored server-side so they can be listed and revoked (ASVS V3).

The cookie holds 256 random bits; the database keeps only their SHA-256, so a copy of the
database signs nobody in. A session ends at the first of: sign-out, revocation, the idle
timeout (``session_idle_minutes`` without a request) and the absolute timeout
(``session_max_hours`` after sign-in). Every sign-in makes a new session (the old cookie,
if any, is revoked), so a session id planted before sign-in is worthless.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from keyguard.accounts.models import Account, AccountSession, Membership
from keyguard.accounts.views import AccountView, BrowserSessionView, SignedIn
from keyguard.audit import service as audit
from keyguard.clock import utc_from_ts
from keyguard.context import ServiceContext
from keyguard.errors import NotFound
from keyguard.ids import new_id

# Writing last_seen_at on every page view would make every read a write; a minute of
# slack on a 30-minute idle timeout is harmless.
TOUCH_EVERY = timedelta(seconds=60)
USER_AGENT_CHARS = 300


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True, repr=False)
class NewSession:
    token: str  # for the cookie only
    session: BrowserSessionView

    def __repr__(self) -> str:
        return f"NewSession({self.session.id})"


@dataclass(frozen=True, slots=True)
class Client:
    """Who is on the other end of a request, as far as the server can tell."""

    ip: str
    user_agent: str


def _now(ctx: ServiceContext) -> datetime:
    return utc_from_ts(ctx.clock.now())


async def start(
    db: AsyncSession,
    ctx: ServiceContext,
    account_id: str,
    client: Client,
    *,
    method: str,
    replaces: str | None = None,
) -> NewSession:
    """A new session in the caller's transaction (``replaces``: the cookie it supersedes)."""
    now = _now(ctx)
    if replaces:
        await db.execute(
            update(AccountSession)
            .where(AccountSession.token_hash == token_hash(replaces))
            .values(revoked_at=now)
        )
    token = secrets.token_urlsafe(32)
    row = AccountSession(
        id=new_id("signin"),
        token_hash=token_hash(token),
        account_id=account_id,
        created_at=now,
        last_seen_at=now,
        authenticated_at=now,
        expires_at=now + timedelta(hours=ctx.settings.session_max_hours),
        ip=client.ip[:64],
        user_agent=client.user_agent[:USER_AGENT_CHARS],
        method=method,
    )
    db.add(row)
    await db.flush()
    return NewSession(token, BrowserSessionView.of(row))


def _alive(row: AccountSession, ctx: ServiceContext, now: datetime) -> bool:
    idle = timedelta(minutes=ctx.settings.session_idle_minutes)
    return row.revoked_at is None and row.expires_at > now and row.last_seen_at + idle > now


async def resolve(ctx: ServiceContext, token: str | None) -> SignedIn | None:
    """The person behind a session cookie, or None (unknown, revoked, idle or too old)."""
    if not token or len(token) > 100:
        return None
    now = _now(ctx)
    async with ctx.sessions() as db:
        found = (
            await db.execute(
                select(AccountSession, Account)
                .join(Account, Account.id == AccountSession.account_id)
                .where(AccountSession.token_hash == token_hash(token))
            )
        ).first()
        if found is None or not _alive(found[0], ctx, now):
            return None
        row, account = found
        roles = {
            m.project_id: m.role
            for m in (
                await db.execute(select(Membership).where(Membership.account_id == account.id))
            ).scalars()
        }
        view, account_view = BrowserSessionView.of(row), AccountView.of(account)
    if now - row.last_seen_at >= TOUCH_EVERY:
        async with ctx.transaction() as db:
            await db.execute(
                update(AccountSession).where(AccountSession.id == row.id).values(last_seen_at=now)
            )
    return SignedIn(account_view, view, roles)


async def list_sessions(ctx: ServiceContext, account_id: str) -> list[BrowserSessionView]:
    """The account's live sessions, most recently used first."""
    now = _now(ctx)
    async with ctx.sessions() as db:
        rows = (
            await db.execute(
                select(AccountSession)
                .where(AccountSession.account_id == account_id)
                .where(AccountSession.revoked_at.is_(None))
                .order_by(AccountSession.last_seen_at.desc())
            )
        ).scalars()
        return [BrowserSessionView.of(r) for r in rows if _alive(r, ctx, now)]


async def revoke(
    ctx: ServiceContext, account_id: str, session_id: str, *, actor: str, reason: str
) -> None:
    """End one of the account's sessions (another account's session is a 404)."""
    now = _now(ctx)
    async with ctx.transaction() as db:
        row = await db.get(AccountSession, session_id, with_for_update=True)
        if row is None or row.account_id != account_id:
            raise NotFound()
        if row.revoked_at is not None:
            return
        row.revoked_at = now
        await audit.record(
            db,
            at=now,
            actor=actor,
            action="account.session_revoked",
            target=account_id,
            data={"session_id": session_id, "reason": reason},
        )


async def revoke_others(ctx: ServiceContext, signed_in: SignedIn) -> int:
    """Sign out every session of the account but the one asking."""
    now = _now(ctx)
    account_id = signed_in.account.id
    async with ctx.transaction() as db:
        ended = await revoke_all(db, account_id, now, keep=signed_in.session.id)
        await audit.record(
            db,
            at=now,
            actor=account_id,
            action="account.session_revoked",
            target=account_id,
            data={"reason": "signed_out_elsewhere", "count": ended},
        )
    return ended


async def revoke_all(
    db: AsyncSession, account_id: str, now: datetime, *, keep: str | None = None
) -> int:
    """End every session of the account but ``keep`` (password change, sign out
    everywhere); in the caller's transaction. How many ended."""
    query = (
        update(AccountSession)
        .where(AccountSession.account_id == account_id, AccountSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    if keep is not None:
        query = query.where(AccountSession.id != keep)
    result = await db.execute(query)
    return int(getattr(result, "rowcount", 0) or 0)


async def reauthenticated(db: AsyncSession, session_id: str, now: datetime) -> str:
    """The person proved it again: the session gets a new token (a privilege change, so
    a cookie copied before it stops working, ASVS V3.2.1). Returns the new token."""
    token = secrets.token_urlsafe(32)
    await db.execute(
        update(AccountSession)
        .where(AccountSession.id == session_id)
        .values(authenticated_at=now, last_seen_at=now, token_hash=token_hash(token))
    )
    return token


def is_recent(signed_in: SignedIn, ctx: ServiceContext) -> bool:
    """Whether the person proved who they are recently enough for a sensitive change."""
    window = timedelta(minutes=ctx.settings.reauth_minutes)
    return signed_in.session.authenticated_at + window > _now(ctx)
