"""A key's settings form <-> the management API's request bodies.

The page validates through the API's own schemas (``KeyCreate``, ``KeyUpdate``): one
copy of every rule (IP entries, domain patterns, scopes, limits). Lists are typed one
entry per line; a refusal goes next to the field it concerns, with the line it is on.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any

from pydantic import ValidationError

from keyguard.keys.views import KeyView
from keyguard.web.pages import Form

# Form fields -> the schema's fields (the page's names are the API's).
LIST_FIELDS = ("scopes", "ip_allowlist", "allowed_domains")
# Lists typed one entry per line: a refusal names the line (an OAuth app's redirect URIs too).
NUMBERED_FIELDS = (*LIST_FIELDS, "redirect_uris")
PERIODS = (1, 60, 3600, 86_400)  # the rate-limit periods offered, in seconds


def lines(text: str) -> list[str]:
    """One entry per line (commas too, for scopes typed on one line); blanks dropped."""
    return [entry.strip() for entry in re.split(r"[\r\n,]+", text) if entry.strip()]


def _expiry(text: str) -> str | None:
    # <input type="date">: the key expires at the end of that day, UTC (said beside it).
    if not text.strip():
        return None
    try:
        day = datetime.strptime(text.strip(), "%Y-%m-%d").date()
    except ValueError:
        return text  # the schema refuses it with its own message
    return datetime.combine(day, time(23, 59, 59), UTC).isoformat()


def _rate(form: Form) -> dict[str, Any] | str | None:
    limit, period = form.get("rate_limit").strip(), form.get("rate_period").strip()
    if not limit:
        return None
    try:
        return {"limit": int(limit), "period_seconds": int(period or "60")}
    except ValueError:
        return limit  # not a number: refused by the schema, next to the field


def settings_body(form: Form, *, creating: bool) -> dict[str, Any]:
    """The JSON body the API would have received for this form."""
    body: dict[str, Any] = {"name": form.get("name").strip()}
    for field in LIST_FIELDS:
        body[field] = lines(form.get(field))
    body["expires_at"] = _expiry(form.get("expires_at"))
    body["rate_limit"] = _rate(form)
    if creating:
        body["environment"] = form.get("environment") or "live"
    return body


def changed(body: Mapping[str, Any], view: KeyView, validated: Mapping[str, Any]) -> dict[str, Any]:
    """Only what differs from the key as it is (``validated``: the schema's normalised
    values), so saving an untouched form changes and audits nothing."""
    current: dict[str, Any] = {
        "name": view.name,
        "scopes": list(view.scopes),
        "ip_allowlist": list(view.ip_allowlist),
        "allowed_domains": list(view.allowed_domains),
        "rate_limit": (
            None
            if view.rate_limit is None
            else (view.rate_limit.limit, view.rate_limit.period_seconds)
        ),
    }
    return {
        field: body[field]
        for field, value in validated.items()
        if field in body
        and not (
            _same_expiry(value, view.expires_at)
            if field == "expires_at"
            else _normal(value) == _normal(current.get(field))
        )
    }


def _same_expiry(typed: Any, current: datetime | None) -> bool:
    """The form shows the expiry's day only: a day that did not change keeps the exact
    instant the key has (set through the API, or a rotation's grace period)."""
    if typed is None or current is None:
        return typed is None and current is None
    return bool(_normal(typed).date() == _normal(current).date())


def _normal(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(microsecond=0)
    if isinstance(value, tuple | list):
        return list(value)
    return value


@dataclass(frozen=True, slots=True)
class FieldError:
    """A refusal next to its field: a service's or the schema's message (and for a list
    the line), or a message of the catalog (``message_key``) for the page's own checks."""

    message: str = ""
    line: int | None = None  # from 1
    message_key: str | None = None
    fields: dict[str, str] = dataclasses.field(default_factory=dict)  # the message's fields


# The catalog's message for a refused value, per field (the schema's own sentence is
# English, for API clients).
FIELD_MESSAGES = {
    "name": "validation.name",
    "scopes": "validation.scope",
    "ip_allowlist": "validation.ip_entry",
    "allowed_domains": "validation.domain",
    "expires_at": "validation.expires_at",
    "rate_limit": "validation.rate_limit",
    "key_prefix": "validation.key_prefix",
    "url": "validation.url",
    "events": "validation.events",
    "description": "validation.description",
    "redirect_uris": "validation.redirect_uri",
}


def field_errors(exc: ValidationError) -> dict[str, FieldError]:
    """The first refusal of each field, in the catalog's words (with the value refused)."""
    found: dict[str, FieldError] = {}
    for error in exc.errors():
        loc = error.get("loc", ())
        field = str(loc[0]) if loc else "name"
        if field in found:
            continue
        message = str(error.get("msg", "")).removeprefix("Value error, ")
        if error.get("type") == "too_long" and len(loc) == 1 and field in NUMBERED_FIELDS:
            # The list itself is too long: no entry of it is at fault.
            most = error.get("ctx", {}).get("max_length", "")
            found[field] = FieldError(message, None, "validation.too_many", {"max": str(most)})
            continue
        line = loc[1] + 1 if len(loc) > 1 and isinstance(loc[1], int) else None
        value = error.get("input")
        found[field] = FieldError(
            message,
            line if field in NUMBERED_FIELDS else None,
            FIELD_MESSAGES.get(field, "validation.invalid"),
            {"value": str(value)[:100] if isinstance(value, str | int | float) else ""},
        )
    return found


def form_values(view: KeyView | None) -> dict[str, str]:
    """What the form shows for ``view`` (empty for a new key)."""
    if view is None:
        return {"rate_period": "60", "environment": "live"}
    return {
        "name": view.name,
        "scopes": "\n".join(view.scopes),
        "ip_allowlist": "\n".join(view.ip_allowlist),
        "allowed_domains": "\n".join(view.allowed_domains),
        "expires_at": "" if view.expires_at is None else view.expires_at.date().isoformat(),
        "rate_limit": "" if view.rate_limit is None else str(view.rate_limit.limit),
        "rate_period": "60" if view.rate_limit is None else str(view.rate_limit.period_seconds),
    }


def typed_values(form: Form) -> dict[str, str]:
    """The form as typed (shown again beside its errors)."""
    names = ("name", "environment", "expires_at", "rate_limit", "rate_period", *LIST_FIELDS)
    return {name: form.get(name) for name in names}
