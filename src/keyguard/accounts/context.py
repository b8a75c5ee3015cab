"""What the accounts feature needs beyond every service's context: its own subkeys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from keyguard.context import ServiceContext
from keyguard.crypto.hashing import derive_subkey


@dataclass(frozen=True, slots=True, repr=False)
class AccountKeys:
    """Subkeys of the master key, one per purpose, so none can stand in for another."""

    csrf: bytes  # binds a form's CSRF token to the browser that was shown the form
    device: bytes  # signs the long-lived device cookie of login alerts
    recovery: bytes  # peppers the stored hashes of recovery codes and invitation tokens

    @classmethod
    def derive(cls, master: bytes) -> AccountKeys:
        return cls(
            csrf=derive_subkey(master, "keyguard/accounts/csrf"),
            device=derive_subkey(master, "keyguard/accounts/device-cookie"),
            recovery=derive_subkey(master, "keyguard/accounts/recovery-codes"),
        )

    def __repr__(self) -> str:
        return "AccountKeys(<redacted>)"


class AccountContext(ServiceContext, Protocol):
    account_keys: AccountKeys
