"""Which audit actions become webhook events, and what their payload says.

:func:`keyguard.audit.service.record` calls :func:`on_audit` inside the transaction
of every audited change, so an event reaches the outbox exactly when its change
commits. Payloads are built from an allow-list of audit fields: never a secret.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy.ext.asyncio import AsyncSession

from keyguard.audit.models import AuditEvent
from keyguard.webhooks.outbox import enqueue

ALL_EVENTS = "*"
PHOTO_UPLOADED = "photo.uploaded"
ENDPOINT_DISABLED = "endpoint.disabled"
EVENT_TYPES: frozenset[str] = frozenset(
    {
        PHOTO_UPLOADED,
        "key.created",
        "key.updated",
        "key.revoked",
        "key.rotated",
        "key.regenerated",
        "key.rotation_due",
        "key.anomaly",
        "key.leaked",
        "audit.checkpoint",
        ENDPOINT_DISABLED,
        "oauth.app_created",
        "oauth.app_deleted",
        "oauth.consent_given",
        "oauth.consent_revoked",
        "oauth.token_reused",
    }
)

_AUDIT_TO_EVENT = {
    "key.created": "key.created",
    "key.updated": "key.updated",
    "key.restrictions_changed": "key.updated",
    "key.revoked": "key.revoked",
    "key.rotated": "key.rotated",
    "key.regenerated": "key.regenerated",
    "key.rotation_due": "key.rotation_due",
    "key.anomaly": "key.anomaly",
    "key.leaked": "key.leaked",
    "webhook.endpoint_disabled": ENDPOINT_DISABLED,
    "oauth.app_created": "oauth.app_created",
    "oauth.app_deleted": "oauth.app_deleted",
    "oauth.consent_given": "oauth.consent_given",
    "oauth.consent_revoked": "oauth.consent_revoked",
    # A code or a spent refresh token presented again: one copy was stolen, the family
    # is revoked, and the project should hear of it at once.
    "oauth.code_reused": "oauth.token_reused",
    "oauth.refresh_token_reused": "oauth.token_reused",
}
# What the audit event's target is, in the payload (default: the key).
_SUBJECT = {
    ENDPOINT_DISABLED: "endpoint_id",
    "oauth.app_created": "app_id",
    "oauth.app_deleted": "app_id",
    "oauth.consent_given": "app_id",
    "oauth.consent_revoked": "app_id",
    "oauth.token_reused": "grant_id",
}
# Audit data that may travel in a payload. Audit data never holds a secret, and this
# list keeps it that way whatever a future audit call adds.
_SAFE_FIELDS = frozenset(
    {
        "fields",
        "new_key_id",
        "grace_seconds",
        "name",
        "environment",
        "scopes",
        "reason",
        "url",
        "rotate_by",
        "days_left",
        "warning",
        "network",
        "refusals",
        "minutes",
        "requests",
        "hourly_average",
        "source",
        "outcome",
        "client_id",
        "public",
    }
)


def redact_url(url: str) -> str:
    """``scheme://host[:port]/path`` of a webhook URL: what the audit log and event
    payloads may show. The query (Slack-style ``?token=``), fragment and any userinfo
    are dropped, since receivers often put credentials there.

        >>> redact_url("https://u:p@hooks.example.com:8443/in?token=secret#x")
        'https://hooks.example.com:8443/in'
    """
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def event_for_audit(event: AuditEvent) -> tuple[str, dict[str, Any]] | None:
    """``(event type, data)`` for an audited action, or None when it is not an event.

    Key changes that have no event type of their own (TOTP, certificates, signing
    secrets, ...) are ``key.updated`` with the action in ``change``.
    """
    if event.project_id is None:
        return None
    event_type = _AUDIT_TO_EVENT.get(event.action)
    data: dict[str, Any] = {}
    if event_type is None:
        if not event.action.startswith("key."):
            return None
        event_type = "key.updated"
        data["change"] = event.action.removeprefix("key.")
    data[_SUBJECT.get(event_type, "key_id")] = event.target
    data.update({k: v for k, v in (event.data or {}).items() if k in _SAFE_FIELDS})
    if isinstance(data.get("url"), str):  # whatever the audit call stored
        data["url"] = redact_url(data["url"])
    data["actor"] = event.actor
    data["occurred_at"] = event.at.isoformat().replace("+00:00", "Z")
    return event_type, data


async def on_audit(session: AsyncSession, event: AuditEvent) -> None:
    """Enqueue the webhook event of an audit record (if any) in the same transaction."""
    mapped = event_for_audit(event)
    if mapped is None or event.project_id is None:
        return
    event_type, data = mapped
    await enqueue(
        session, project_id=event.project_id, event_type=event_type, data=data, at=event.at
    )


__all__ = [
    "ALL_EVENTS",
    "ENDPOINT_DISABLED",
    "EVENT_TYPES",
    "PHOTO_UPLOADED",
    "on_audit",
    "redact_url",
]
