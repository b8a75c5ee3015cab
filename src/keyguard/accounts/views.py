"""What the account services hand the edges: frozen views, never ORM rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from keyguard.accounts.models import Account, AccountSession, Passkey
from keyguard.engine.principals import UserPrincipal


@dataclass(frozen=True, slots=True)
class AccountView:
    id: str
    email: str
    is_admin: bool
    created_at: datetime
    password_changed_at: datetime | None
    totp_enabled: bool
    language: str | None = None  # None: the browser's Accept-Language decides

    @classmethod
    def of(cls, row: Account) -> AccountView:
        return cls(
            id=row.id,
            email=row.email,
            is_admin=row.is_admin,
            created_at=row.created_at,
            password_changed_at=row.password_changed_at,
            totp_enabled=row.totp_enabled_at is not None,
            language=row.language,
        )


@dataclass(frozen=True, slots=True)
class BrowserSessionView:
    """A signed-in browser, as its owner sees it in the sessions list."""

    id: str
    account_id: str
    created_at: datetime
    last_seen_at: datetime
    authenticated_at: datetime
    expires_at: datetime
    ip: str
    user_agent: str
    method: str

    @classmethod
    def of(cls, row: AccountSession) -> BrowserSessionView:
        return cls(
            id=row.id,
            account_id=row.account_id,
            created_at=row.created_at,
            last_seen_at=row.last_seen_at,
            authenticated_at=row.authenticated_at,
            expires_at=row.expires_at,
            ip=row.ip,
            user_agent=row.user_agent,
            method=row.method,
        )


@dataclass(frozen=True, slots=True)
class PasskeyView:
    id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    backed_up: bool

    @classmethod
    def of(cls, row: Passkey) -> PasskeyView:
        return cls(row.id, row.name, row.created_at, row.last_used_at, row.backed_up)


@dataclass(frozen=True, slots=True)
class SignedIn:
    """The person behind a valid session cookie, with their roles (project id -> role)."""

    account: AccountView
    session: BrowserSessionView
    roles: dict[str, str]

    @property
    def principal(self) -> UserPrincipal:
        """The same person as the engine's principal, for the one authorization question."""
        return UserPrincipal(self.account.id, self.session.id, roles=dict(self.roles))
