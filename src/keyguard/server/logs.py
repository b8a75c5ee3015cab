"""The server's log: one line per event, as text or JSON, each with its request's id.

``KEYGUARD_LOG_FORMAT=json`` writes one JSON object per line (CONTRACT §11); ``text``
(the default) writes ``time level logger: message key=value``. Keyguard's own structlog
loggers, uvicorn's and the access log all end up here, so one setting governs them all.

The request id is set by the edge (:mod:`keyguard.server.edge`) in a context variable for
the request's task; every line logged while serving that request carries it, and the
response carries it as ``X-Request-Id``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import MutableMapping
from contextvars import ContextVar
from typing import Any, Literal, TextIO

import structlog

LogFormat = Literal["text", "json"]

REQUEST_ID: ContextVar[str | None] = ContextVar("keyguard_request_id", default=None)

# Attributes every LogRecord has; anything else on a record came from ``extra=`` or
# structlog's key-value pairs.
# (uvicorn adds "color_message", the same message with terminal colours.)
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}


_QUIET = ("httpx", "httpcore", "hpack")


def new_request_id() -> str:
    """80 random bits in hex: unique across workers and instances, and guessing one tells
    nobody anything (a counter would reveal the request rate)."""
    return os.urandom(10).hex()


def timestamp(seconds: float) -> str:
    """RFC 3339 UTC with milliseconds: ``2026-12-05T16:17:49.123Z``."""
    whole = int(seconds)
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        + f".{int((seconds - whole) * 1000):03d}Z"
    )


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD and k != "request_id"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            entry["request_id"] = request_id
        entry.update(_fields(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = (
            f"{timestamp(record.created)} {record.levelname} {record.name}: {record.getMessage()}"
        )
        pairs = [f"{k}={v}" for k, v in _fields(record).items()]
        request_id = getattr(record, "request_id", None)
        if request_id:
            pairs.append(f"request_id={request_id}")
        if pairs:
            line += " " + " ".join(pairs)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class _WithRequestId(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        return True


def _no_clashes(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    # A key named like a LogRecord attribute ("name", "args") would make logging raise.
    for key in [k for k in event if k in _STANDARD]:
        event[key + "_"] = event.pop(key)
    return event


def formatter(log_format: LogFormat) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else TextFormatter()


def configure(level: str, log_format: LogFormat, stream: TextIO | None = None) -> None:
    """Route every logger (stdlib, uvicorn's, structlog's) to one handler on ``stream``
    (stderr by default) in ``log_format``. Called once by ``keyguard serve``."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(log_format))
    handler.addFilter(_WithRequestId())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in _QUIET:
        # httpx logs every request's URL at INFO, userinfo included (the gateway's
        # upstream may carry a password in it): only its warnings reach our log.
        logging.getLogger(name).setLevel(max(root.level, logging.WARNING))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # uvicorn's own handlers would print a second, differently formatted copy.
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.processors.format_exc_info,
            _no_clashes,
            structlog.stdlib.render_to_log_kwargs,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
