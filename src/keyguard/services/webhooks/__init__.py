"""Webhook use cases over the database: endpoints, the durable outbox and its worker.

The pure parts (SSRF guard, signing, sender, retry schedule) live in
:mod:`keyguard.webhooks`. This package imports nothing at package level, so
:mod:`keyguard.services.audit` can import :mod:`.events` without an import cycle.
"""
