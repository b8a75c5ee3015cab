"""Outbound webhook delivery, framework-free: SSRF guard, signing, sender, retry schedule.

The durable outbox (elsewhere) stores deliveries and calls :func:`send_webhook`; this
package knows neither SQL nor any web framework.
"""

from keyguard.webhooks.attempt import AttemptResult
from keyguard.webhooks.schedule import is_retryable, next_attempt_delay, should_disable_endpoint
from keyguard.webhooks.sender import send_webhook
from keyguard.webhooks.signing import (
    new_webhook_secret,
    seed_signature,
    signature_headers,
    standard_signature,
)
from keyguard.webhooks.ssrf import (
    ParsedUrl,
    ResolutionFailed,
    Resolver,
    UnsafeWebhookUrl,
    classify_address,
    resolve_safe,
    validate_for_registration,
    validate_webhook_url,
)

__all__ = [
    "AttemptResult",
    "ParsedUrl",
    "ResolutionFailed",
    "Resolver",
    "UnsafeWebhookUrl",
    "classify_address",
    "is_retryable",
    "new_webhook_secret",
    "next_attempt_delay",
    "resolve_safe",
    "seed_signature",
    "send_webhook",
    "should_disable_endpoint",
    "signature_headers",
    "standard_signature",
    "validate_for_registration",
    "validate_webhook_url",
]
