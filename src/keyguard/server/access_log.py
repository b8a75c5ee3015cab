"""The access log: one structured line per request, written in batches off the request path.

The request path only appends a tuple (:meth:`AccessLog.record`, well under a
microsecond); formatting and the write happen in :meth:`AccessLog.flush`, which the event
loop runs every quarter of a second, or at once when a batch is full. Under load that is
one ``write`` for hundreds of lines instead of a trip through ``logging`` per request
(uvicorn's access log cost 12 % of a protected request's time).

Query strings never reach it: they carry credentials in practice (Keyguard's own signed
photo download links, ``?expires=…&signature=…``, are bearer credentials for an hour, and
an upstream behind the gateway may put anything there). The line holds the path as the
client sent it (percent-encoded), with anything unprintable escaped, so no request can
write a line of its own into the log. Paths that carry a one-time link's token (an
invitation, a sign-up, an email confirmation) are logged without it: whoever reads the
log must not be able to use the link.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from typing import Any, NamedTuple, TextIO

from keyguard.server.logs import LogFormat, timestamp

LOGGER = "keyguard.access"
FLUSH_SECONDS = 0.25
BATCH = 512
_MAX_PATH = 2048
_PIPE_BUF = 4000  # characters; POSIX guarantees atomic pipe writes up to 4096 bytes


class Entry(NamedTuple):
    time: float  # when the request arrived (epoch seconds)
    client: tuple[str, int] | None
    method: str
    path: bytes  # raw, without the query string
    http_version: str
    status: int
    duration: float  # seconds
    request_id: str


# Pages whose last path segment is a bearer token of a one-time link.
_TOKEN_PATHS = (b"/invitations/", b"/signup/", b"/account/email/confirm/")


def printable_path(raw: bytes) -> str:
    for prefix in _TOKEN_PATHS:
        if raw.startswith(prefix) and len(raw) > len(prefix):
            return prefix.decode() + "[token]"
    path = raw[:_MAX_PATH].decode("latin-1")
    if not path.isprintable():
        path = path.encode("unicode_escape").decode("ascii")
    return path + ("…" if len(raw) > _MAX_PATH else "")


def _client(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "-"


def text_line(entry: Entry) -> str:
    return (
        f"{timestamp(entry.time)} INFO {LOGGER}: {_client(entry.client)} "
        f'"{entry.method} {printable_path(entry.path)} HTTP/{entry.http_version}" {entry.status} '
        f"{entry.duration * 1000:.2f}ms request_id={entry.request_id}\n"
    )


def json_line(entry: Entry) -> str:
    fields: dict[str, Any] = {
        "time": timestamp(entry.time),
        "level": "info",
        "logger": LOGGER,
        "message": f"{entry.method} {printable_path(entry.path)} {entry.status}",
        "request_id": entry.request_id,
        "client": _client(entry.client),
        "method": entry.method,
        "path": printable_path(entry.path),
        "http_version": entry.http_version,
        "status": entry.status,
        "duration_ms": round(entry.duration * 1000, 3),
    }
    return json.dumps(fields, ensure_ascii=False) + "\n"


class AccessLog:
    """Example::

    access = AccessLog(sys.stderr, "json")
    access.record(Entry(...))   # on the request path
    access.flush()              # at shutdown (the loop flushes on its own meanwhile)
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        log_format: LogFormat = "text",
        *,
        flush_seconds: float = FLUSH_SECONDS,
    ) -> None:
        self.stream = stream
        self.line = json_line if log_format == "json" else text_line
        self.flush_seconds = flush_seconds
        self._pending: list[Entry] = []
        self._timer: asyncio.TimerHandle | None = None

    def record(self, entry: Entry) -> None:
        pending = self._pending
        pending.append(entry)
        if len(pending) >= BATCH:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.flush_seconds, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self._pending = self._pending, []
        if not pending:
            return
        stream = self.stream or sys.stderr
        try:
            for chunk in _chunks([self.line(entry) for entry in pending]):
                stream.write(chunk)
                stream.flush()
        except (OSError, ValueError):
            pass  # a closed or broken log stream must not fail requests


def _chunks(lines: list[str]) -> Iterator[str]:
    """Whole lines, joined into writes of at most ``PIPE_BUF`` bytes where they fit: a
    pipe writes those atomically, so the workers of ``--workers N`` sharing one stderr
    never interleave inside a line."""
    chunk: list[str] = []
    size = 0
    for line in lines:
        if chunk and size + len(line) > _PIPE_BUF:
            yield "".join(chunk)
            chunk, size = [], 0
        chunk.append(line)
        size += len(line)
    if chunk:
        yield "".join(chunk)
