"""The gateway (``keyguard gateway --upstream URL``): every check, then a reverse proxy."""

from keyguard.gateway.proxy import Gateway, upstream_base

__all__ = ["Gateway", "upstream_base"]
