"""What the upload services need beyond every service's context."""

from __future__ import annotations

from typing import Protocol

from keyguard.engine.cache import ReadThroughCache
from keyguard.uploads.views import SessionView
from keyguard.webhooks.context import WebhookContext


class UploadContext(WebhookContext, Protocol):
    # Sessions deliver their photos as webhooks, so uploads need the webhook context too.
    # Sessions never change after creation: the hot GET reads them from here.
    session_cache: ReadThroughCache[SessionView]
