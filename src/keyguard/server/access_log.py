"""Keep query strings out of the access log.

Query strings carry credentials in practice: Keyguard's own signed photo download links
(``?expires=…&signature=…`` is a bearer credential for an hour), and whatever an
upstream behind the gateway puts there. The access log keeps method, path and status.
"""

from __future__ import annotations

import logging

ACCESS_LOGGER = "uvicorn.access"


class RedactQueryStrings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        # uvicorn logs (client_addr, method, full_path, http_version, status_code).
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            path, sep, _ = args[2].partition("?")
            if sep:
                record.args = (args[0], args[1], path + "?[redacted]", args[3], args[4])
        return True


def install() -> None:
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, RedactQueryStrings) for f in logger.filters):
        logger.addFilter(RedactQueryStrings())
