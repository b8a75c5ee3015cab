"""Project members (CONTRACT §9): owners invite people by email, change their roles and
remove them; an invitation is a single-use link that expires.

What an attacker can try, and what answers it:

- **Using an invitation twice, or racing two browsers with it**: accepting is one
  conditional UPDATE (pending and not expired); only one request can win it.
- **Reading invitations out of the database**: only an HMAC of the token is stored.
- **Accepting someone else's invitation while signed in**: the signed-in account's email
  must be the invited one.
- **Taking over an existing account through an invitation**: an invitation for an email
  that already has an account never sets a password; that person signs in first.
- **Locking a project out**: the last owner can neither be demoted nor removed.
- **Probing projects**: a project the person is not a member of is a 404 (through
  ``authorize_person``), whatever the action.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from keyguard.accounts.context import AccountContext
from keyguard.accounts.errors import InvitationInvalid
from keyguard.accounts.models import Account, Invitation, Membership
from keyguard.accounts.passwords import check_new_password, hash_password
from keyguard.accounts.service import check_email
from keyguard.audit import service as audit
from keyguard.clock import utc_from_ts
from keyguard.engine.permissions import Permission, Role, authorize_person
from keyguard.engine.principals import UserPrincipal
from keyguard.errors import Conflict, NotFound, RateLimited, ValidationFailed
from keyguard.i18n import translate
from keyguard.ids import new_id
from keyguard.mail.outbox import enqueue_mail
from keyguard.oauth import revocation
from keyguard.projects.models import Project

INVITATION_DAYS = 7
INVITES_PER_INVITER = (30, 3600)
INVITES_PER_ADDRESS = (3, 24 * 3600)


@dataclass(frozen=True, slots=True)
class MemberView:
    account_id: str
    email: str
    role: str
    since: datetime


@dataclass(frozen=True, slots=True)
class InvitationView:
    id: str
    project_id: str
    project_name: str
    email: str
    role: str
    expires_at: datetime
    account_exists: bool


@dataclass(frozen=True, slots=True)
class ProjectMembership:
    project_id: str
    name: str
    role: str


def _token_hash(ctx: AccountContext, token: str) -> str:
    message = f"invitation:{token}".encode()
    return hmac.new(ctx.account_keys.recovery, message, hashlib.sha256).hexdigest()


def _role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise ValidationFailed(translate("members.role_invalid"), field="role") from None


async def owner_emails(db: AsyncSession, project_id: str) -> list[str]:
    """Where a project's notices go (key-age warnings, anomalies): its owners."""
    found = await db.execute(
        select(Account.email)
        .join(Membership, Membership.account_id == Account.id)
        .where(Membership.project_id == project_id, Membership.role == Role.OWNER.value)
        .order_by(Account.email)
    )
    return list(found.scalars())


async def projects_of(ctx: AccountContext, account_id: str) -> list[ProjectMembership]:
    async with ctx.sessions() as db:
        rows = await db.execute(
            select(Project.id, Project.name, Membership.role)
            .join(Membership, Membership.project_id == Project.id)
            .where(Membership.account_id == account_id)
            .order_by(Project.name)
        )
        return [ProjectMembership(*row) for row in rows.all()]


async def members(
    ctx: AccountContext, principal: UserPrincipal, project_id: str
) -> tuple[str, list[MemberView], list[InvitationView]]:
    """The project's name, its members and its pending invitations (any member sees them)."""
    authorize_person(principal, project_id, Permission.READ)
    now = utc_from_ts(ctx.clock.now())
    async with ctx.sessions() as db:
        project = await db.get(Project, project_id)
        if project is None:
            raise NotFound()
        people = await db.execute(
            select(Membership, Account.email)
            .join(Account, Account.id == Membership.account_id)
            .where(Membership.project_id == project_id)
            .order_by(Account.email)
        )
        found = [MemberView(m.account_id, email, m.role, m.created_at) for m, email in people]
        pending = await db.execute(
            select(Invitation)
            .where(Invitation.project_id == project_id)
            .where(Invitation.accepted_at.is_(None), Invitation.expires_at > now)
            .order_by(Invitation.created_at)
        )
        invitations = [
            InvitationView(i.id, project_id, project.name, i.email, i.role, i.expires_at, False)
            for i in pending.scalars()
        ]
        return project.name, found, invitations


async def invite(
    ctx: AccountContext, principal: UserPrincipal, project_id: str, email: str, role: str
) -> InvitationView:
    """Invite ``email`` as ``role``: an email with a link valid for ``INVITATION_DAYS``
    (an earlier pending invitation of the same person to the same project is replaced)."""
    authorize_person(principal, project_id, Permission.MANAGE_MEMBERS)
    email = check_email(email)
    chosen = _role(role)
    # Each invitation is an email to an address the inviter chose, with text they chose
    # (the project's name): bounded per inviter and per address, so nobody can use
    # Keyguard's mail server to flood a mailbox.
    limiter = ctx.state.rate_limiter
    for bucket, (limit, period) in (
        (f"invite:by:{principal.account_id}", INVITES_PER_INVITER),
        (f"invite:to:{email}", INVITES_PER_ADDRESS),
    ):
        sent = await limiter.hit(bucket, limit, period)
        if not sent.allowed:
            raise RateLimited(
                translate("members.invites_throttled"), retry_after=sent.reset_seconds
            )
    token = secrets.token_urlsafe(32)
    now = utc_from_ts(ctx.clock.now())
    expires = now + timedelta(days=INVITATION_DAYS)
    async with ctx.transaction() as db:
        project = await db.get(Project, project_id, with_for_update=True)
        if project is None:
            raise NotFound()
        already = await db.execute(
            select(Membership)
            .join(Account, Account.id == Membership.account_id)
            .where(Membership.project_id == project_id, Account.email == email)
        )
        if already.first() is not None:
            raise Conflict(translate("members.already_member"))
        await db.execute(
            delete(Invitation).where(
                Invitation.project_id == project_id,
                Invitation.email == email,
                Invitation.accepted_at.is_(None),
            )
        )
        row = Invitation(
            id=new_id("inv"),
            token_hash=_token_hash(ctx, token),
            project_id=project_id,
            email=email,
            role=chosen.value,
            invited_by=principal.account_id,
            created_at=now,
            expires_at=expires,
            accepted_at=None,
        )
        db.add(row)
        inviter = await db.get(Account, principal.account_id)
        link = f"{ctx.settings.public_base_url}/invitations/{token}"
        enqueue_mail(
            db,
            ctx,
            to=email,
            subject=translate("mail.invitation.subject", project=project.name),
            body=translate(
                "mail.invitation.body",
                inviter=inviter.email if inviter else "",
                project=project.name,
                role=translate(f"roles.{chosen.value}"),
                link=link,
                days=INVITATION_DAYS,
            ),
            kind="invitation",
        )
        await audit.record(
            db,
            at=now,
            actor=principal.account_id,
            action="project.member_invited",
            target=project_id,
            project_id=project_id,
            data={"invitation_id": row.id, "email": email, "role": chosen.value},
        )
    return InvitationView(row.id, project_id, project.name, email, chosen.value, expires, False)


async def revoke_invitation(
    ctx: AccountContext, principal: UserPrincipal, project_id: str, invitation_id: str
) -> None:
    authorize_person(principal, project_id, Permission.MANAGE_MEMBERS)
    now = utc_from_ts(ctx.clock.now())
    async with ctx.transaction() as db:
        done = await db.execute(
            delete(Invitation).where(
                Invitation.id == invitation_id,
                Invitation.project_id == project_id,
                Invitation.accepted_at.is_(None),
            )
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            raise NotFound()
        await audit.record(
            db,
            at=now,
            actor=principal.account_id,
            action="project.invitation_revoked",
            target=project_id,
            project_id=project_id,
            data={"invitation_id": invitation_id},
        )


async def invitation(ctx: AccountContext, token: str) -> InvitationView:
    """The pending invitation behind a link (``InvitationInvalid`` if used, expired or
    unknown: one answer for all three)."""
    if not token or len(token) > 100:
        raise InvitationInvalid()
    now = utc_from_ts(ctx.clock.now())
    async with ctx.sessions() as db:
        found = await db.execute(
            select(Invitation, Project.name)
            .join(Project, Project.id == Invitation.project_id)
            .where(Invitation.token_hash == _token_hash(ctx, token))
        )
        row = found.first()
        if row is None or row[0].accepted_at is not None or row[0].expires_at <= now:
            raise InvitationInvalid()
        inv, name = row
        exists = await db.execute(select(Account.id).where(Account.email == inv.email))
        return InvitationView(
            inv.id,
            inv.project_id,
            name,
            inv.email,
            inv.role,
            inv.expires_at,
            exists.first() is not None,
        )


async def accept(
    ctx: AccountContext, token: str, *, account_id: str | None, password: str | None
) -> str:
    """Join the project: as the signed-in ``account_id`` (whose email must be the invited
    one), or as a new account with ``password`` when the email has none. Returns the
    account id."""
    found = await invitation(ctx, token)
    now = utc_from_ts(ctx.clock.now())
    new_hash = None
    if account_id is None:
        if found.account_exists:
            raise Conflict(translate("invitation.sign_in_first"))
        new_hash = await hash_password(check_new_password(password or "", email=found.email))
    async with ctx.transaction() as db:
        existing = await db.get(Account, account_id) if account_id is not None else None
        if account_id is not None and (existing is None or existing.email != found.email):
            raise Conflict(translate("invitation.other_account", email=found.email))
        # The one step that makes the link single-use, even for two requests at once.
        taken = await db.execute(
            update(Invitation)
            .where(
                Invitation.id == found.id,
                Invitation.accepted_at.is_(None),
                Invitation.expires_at > now,
            )
            .values(accepted_at=now)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            raise InvitationInvalid()
        account = existing or await _new_account(db, found, new_hash, now)
        member = await db.get(Membership, (found.project_id, account.id))
        if member is None:
            db.add(
                Membership(
                    project_id=found.project_id,
                    account_id=account.id,
                    role=found.role,
                    created_at=now,
                )
            )
        await audit.record(
            db,
            at=now,
            actor=account.id,
            action="project.member_joined",
            target=found.project_id,
            project_id=found.project_id,
            data={"invitation_id": found.id, "role": found.role, "account_id": account.id},
        )
        return account.id


async def _new_account(
    db: AsyncSession, found: InvitationView, password_hash: str | None, now: datetime
) -> Account:
    assert password_hash is not None
    account = Account(
        id=new_id("acct"),
        email=found.email,
        password_hash=password_hash,
        is_admin=False,
        created_at=now,
    )
    db.add(account)
    await db.flush()
    await audit.record(
        db,
        at=now,
        actor=account.id,
        action="account.created",
        target=account.id,
        data={"invitation_id": found.id},
    )
    return account


async def _owners(db: AsyncSession, project_id: str) -> int:
    counted = await db.execute(
        select(func.count())
        .select_from(Membership)
        .where(Membership.project_id == project_id, Membership.role == Role.OWNER.value)
    )
    return int(counted.scalar_one())


async def change_role(
    ctx: AccountContext, principal: UserPrincipal, project_id: str, account_id: str, role: str
) -> None:
    authorize_person(principal, project_id, Permission.MANAGE_MEMBERS)
    chosen = _role(role)
    now = utc_from_ts(ctx.clock.now())
    async with ctx.transaction() as db:
        await db.get(Project, project_id, with_for_update=True)  # one change at a time
        member = await db.get(Membership, (project_id, account_id))
        if member is None:
            raise NotFound()
        if member.role == Role.OWNER and chosen != Role.OWNER and await _owners(db, project_id) < 2:
            raise Conflict(translate("members.last_owner"))
        before, member.role = member.role, chosen.value
        await audit.record(
            db,
            at=now,
            actor=principal.account_id,
            action="project.member_role_changed",
            target=project_id,
            project_id=project_id,
            data={"account_id": account_id, "from": before, "to": chosen.value},
        )


async def remove(
    ctx: AccountContext, principal: UserPrincipal, project_id: str, account_id: str
) -> None:
    authorize_person(principal, project_id, Permission.MANAGE_MEMBERS)
    now = utc_from_ts(ctx.clock.now())
    async with ctx.transaction() as db:
        await db.get(Project, project_id, with_for_update=True)
        member = await db.get(Membership, (project_id, account_id))
        if member is None:
            raise NotFound()
        if member.role == Role.OWNER and await _owners(db, project_id) < 2:
            raise Conflict(translate("members.last_owner"))
        await db.delete(member)
        # What they let apps do in this project ends with their membership.
        await revocation.revoke_person(ctx, db, project_id, account_id, reason="member_removed")
        await audit.record(
            db,
            at=now,
            actor=principal.account_id,
            action="project.member_removed",
            target=project_id,
            project_id=project_id,
            data={"account_id": account_id, "role": member.role},
        )
