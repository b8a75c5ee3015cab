"""Roles grant scopes (CONTRACT §8): which of an app's scopes a person may hand it.

A token carries the scopes asked for that the app may ask for AND the person's role in
the app's project grants. Each app may say per role which of its scopes the role grants
(``role_scopes``); for a role it does not list, the rule is: owners, admins and
developers grant every scope of the app, viewers only reading ones (``read`` or ending
in ``:read``), since a viewer may change nothing in Keyguard either.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from keyguard.engine.permissions import Role


def is_reading(scope: str) -> bool:
    return scope == "read" or scope.endswith(":read")


def role_grants(
    role: str, app_scopes: Sequence[str], role_scopes: Mapping[str, Sequence[str]]
) -> frozenset[str]:
    """The app's scopes that ``role`` grants."""
    allowed = frozenset(app_scopes)
    if role in role_scopes:
        return allowed & frozenset(role_scopes[role])
    if role == Role.VIEWER:
        return frozenset(s for s in allowed if is_reading(s))
    if role in (Role.OWNER, Role.ADMIN, Role.DEVELOPER):
        return allowed
    return frozenset()  # a role this version does not know grants nothing


def parse_scope(text: str | None) -> frozenset[str] | None:
    """RFC 6749 §3.3: space-delimited; None when absent (the default applies)."""
    if text is None:
        return None
    return frozenset(part for part in text.split(" ") if part)


def format_scope(scopes: Iterable[str]) -> str:
    return " ".join(sorted(scopes))
