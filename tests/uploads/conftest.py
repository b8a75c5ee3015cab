"""Uploads emit ``photo.uploaded``: the shared webhook fixtures."""

from webhook_fixtures import dns, receiver, runtime, settings, worker

__all__ = ["dns", "receiver", "runtime", "settings", "worker"]
