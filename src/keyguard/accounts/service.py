"""Accounts. For now: the first admin, created by ``keyguard init``."""

from __future__ import annotations

from dataclasses import dataclass

import anyio
from sqlalchemy import func, select

from keyguard.accounts.models import Account
from keyguard.audit import service as audit
from keyguard.clock import utc_from_ts
from keyguard.context import ServiceContext
from keyguard.crypto.passwords import hash_account_password
from keyguard.errors import Conflict, ValidationFailed
from keyguard.ids import new_id
from keyguard.keys.service import create_root_key
from keyguard.keys.views import CreatedKey
from keyguard.projects.service import CreatedProject, create_project

MIN_PASSWORD_CHARS = 12


@dataclass(frozen=True, slots=True, repr=False)
class InitResult:
    account: Account
    root_key: CreatedKey
    project: CreatedProject


def _check_email(email: str) -> str:
    email = email.strip()
    local, at, domain = email.rpartition("@")
    if (
        not at
        or not local
        or "." not in domain
        or len(email) > 320
        or any(c.isspace() or ord(c) < 32 for c in email)
    ):
        raise ValidationFailed("email is not valid")
    return email.lower()


async def init_admin(ctx: ServiceContext, *, email: str, password: str) -> InitResult:
    email = _check_email(email)
    if len(password) < MIN_PASSWORD_CHARS:
        raise ValidationFailed(f"password must be at least {MIN_PASSWORD_CHARS} characters")
    password_hash = await anyio.to_thread.run_sync(hash_account_password, password)
    now = utc_from_ts(ctx.clock.now())
    async with ctx.transaction() as session:
        if (await session.execute(select(func.count()).select_from(Account))).scalar_one():
            raise Conflict("Keyguard is already initialised")
        account = Account(
            id=new_id("acct"),
            email=email,
            password_hash=password_hash,
            is_admin=True,
            created_at=now,
        )
        session.add(account)
        await session.flush()
        await audit.record(
            session,
            at=now,
            actor=account.id,
            action="account.created",
            target=account.id,
            data={"admin": True},
        )
        root = await create_root_key(session, ctx, account_id=account.id, name="root")
    project = await create_project(
        ctx, name="Default project", key_prefix=None, actor=account.id, owner=account.id
    )
    return InitResult(account, root, project)
