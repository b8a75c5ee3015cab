"""What a feature hands the application: its routers, its problem types, its audit
subscribers. ``keyguard.features`` lists every feature; the app and the runtime are
built from that list, so adding a feature is one line there."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from keyguard.errors import KeyguardError

if TYPE_CHECKING:
    from fastapi import APIRouter

# Handed each appended audit event (an ``AuditEvent`` row) inside the appending
# transaction, so what it writes commits or rolls back with the event.
AuditSubscriber = Callable[[AsyncSession, Any], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Feature:
    name: str
    # Matched in this order, after the routers of the features listed before this one.
    routers: tuple[APIRouter, ...] = ()
    # The problems only this feature raises (CONTRACT §2: each a stable code).
    errors: tuple[type[KeyguardError], ...] = ()
    audit_subscribers: tuple[AuditSubscriber, ...] = ()
