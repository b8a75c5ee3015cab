"""What the webhook services need beyond every service's context."""

from __future__ import annotations

from typing import Protocol

from keyguard.context import ServiceContext
from keyguard.webhooks.ssrf import Resolver


class WebhookContext(ServiceContext, Protocol):
    # How webhook hosts are resolved, at registration and by the delivery worker alike;
    # None: the system's resolver (tests put a fake one here, so nothing touches DNS).
    webhook_resolver: Resolver | None
    # Signs the photo download links that session webhooks carry.
    link_key: bytes
