"""Problems of webhook endpoints (CONTRACT §7)."""

from __future__ import annotations

from keyguard.errors import (
    Conflict,
    ValidationFailed,
)


class WebhookUrlInvalid(ValidationFailed):
    code = "invalid_url"
    title = "The webhook URL is not valid"


class WebhookUrlHttpsRequired(ValidationFailed):
    code = "https_required"
    title = "Webhook URLs must use https"


class WebhookUrlBlocked(ValidationFailed):
    code = "ssrf_blocked"
    title = "The webhook URL targets an address webhooks may not reach"


class EndpointDisabled(Conflict):
    code = "endpoint_disabled"
    title = "The webhook endpoint is disabled"
