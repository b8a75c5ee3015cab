"""Accounts: the first admin (``keyguard init``), and changes people make to their own."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import func, select

from keyguard.accounts import notices
from keyguard.accounts.context import AccountContext
from keyguard.accounts.errors import ReauthenticationRequired
from keyguard.accounts.models import Account
from keyguard.accounts.passwords import check_new_password, hash_password
from keyguard.accounts.sessions import is_recent, revoke_all
from keyguard.accounts.views import AccountView, SignedIn
from keyguard.audit import service as audit
from keyguard.clock import utc_from_ts
from keyguard.context import ServiceContext
from keyguard.errors import Conflict, ValidationFailed
from keyguard.i18n import LANGUAGES, translate
from keyguard.ids import new_id
from keyguard.keys.service import create_root_key
from keyguard.keys.views import CreatedKey
from keyguard.projects.service import CreatedProject, create_project


@dataclass(frozen=True, slots=True, repr=False)
class InitResult:
    account: AccountView
    root_key: CreatedKey
    project: CreatedProject


# One plain address (RFC 5321 dot-atom local part, a host name): no comments, quotes,
# lists or encoded words, which mail software would read as another address, or several.
_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


def check_email(email: str) -> str:
    """The address, lower-cased with its domain in ASCII (IDNA), or ``ValidationFailed``."""
    local, at, domain = email.strip().rpartition("@")
    try:
        domain = domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        domain = ""
    labels = domain.split(".")
    if (
        not at
        or len(local) > 64
        or not _LOCAL.fullmatch(local)
        or "=?" in local  # an RFC 2047 encoded word, which a mail reader would decode
        or len(labels) < 2
        or not all(_LABEL.fullmatch(label) for label in labels)
        or len(local) + 1 + len(domain) > 254
    ):
        raise ValidationFailed(translate("members.email_invalid"), field="email")
    return f"{local.lower()}@{domain}"


async def init_admin(ctx: ServiceContext, *, email: str, password: str) -> InitResult:
    email = check_email(email)
    password_hash = await hash_password(check_new_password(password, email=email))
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
    return InitResult(AccountView.of(account), root, project)


async def change_password(
    ctx: AccountContext, signed_in: SignedIn, new: str, *, recent: bool
) -> None:
    """Needs a recent sign-in (and the current password, checked by the page through
    ``signin.check_current_password``); ends every other session."""
    if not recent:
        raise ReauthenticationRequired()
    password = check_new_password(new, email=signed_in.account.email)
    password_hash = await hash_password(password)
    now = utc_from_ts(ctx.clock.now())
    async with ctx.transaction() as db:
        row = await db.get(Account, signed_in.account.id, with_for_update=True)
        if row is None:  # pragma: no cover
            raise ValidationFailed("the account no longer exists")
        row.password_hash = password_hash
        row.password_changed_at = now
        ended = await revoke_all(db, row.id, now, keep=signed_in.session.id)
        await audit.record(
            db,
            at=now,
            actor=row.id,
            action="account.password_changed",
            target=row.id,
            data={"other_sessions_ended": ended},
        )
        await notices.credential_changed(db, ctx, row.id, "password_changed")


async def set_language(ctx: AccountContext, signed_in: SignedIn, language: str | None) -> None:
    """The language of the person's pages: one of ``i18n.LANGUAGES``, or None to follow
    the browser's ``Accept-Language``. Audited; no recent sign-in needed (nothing to
    steal)."""
    if language is not None and language not in LANGUAGES:
        raise ValidationFailed(translate("security.language.invalid"), field="language")
    now = utc_from_ts(ctx.clock.now())
    async with ctx.transaction() as db:
        row = await db.get(Account, signed_in.account.id, with_for_update=True)
        if row is None:  # pragma: no cover
            raise ValidationFailed("the account no longer exists")
        if row.language == language:
            return
        before, row.language = row.language, language
        await audit.record(
            db,
            at=now,
            actor=row.id,
            action="account.language_changed",
            target=row.id,
            data={"from": before, "to": language},
        )


__all__ = [
    "InitResult",
    "change_password",
    "check_email",
    "init_admin",
    "is_recent",
    "set_language",
]
