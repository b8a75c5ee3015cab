"""What the webhooks feature registers (CONTRACT §7): security events become deliveries."""

from __future__ import annotations

from keyguard.feature import Feature
from keyguard.webhooks import routes, session_routes
from keyguard.webhooks.errors import (
    EndpointDisabled,
    WebhookUrlBlocked,
    WebhookUrlHttpsRequired,
    WebhookUrlInvalid,
)
from keyguard.webhooks.events import on_audit

FEATURE = Feature(
    name="webhooks",
    routers=(session_routes.router, routes.router),
    errors=(WebhookUrlInvalid, WebhookUrlHttpsRequired, WebhookUrlBlocked, EndpointDisabled),
    audit_subscribers=(on_audit,),
)
