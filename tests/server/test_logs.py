"""The server's log (CONTRACT §11): one line per event, JSON on request, with the request id."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import structlog

from keyguard.server import logs
from keyguard.server.edge import Edge


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    quiet = {name: logging.getLogger(name).level for name in ("httpx", "httpcore", "hpack")}
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    for name, lvl in quiet.items():
        logging.getLogger(name).setLevel(lvl)
    structlog.reset_defaults()


async def test_lines_written_while_serving_a_request_carry_its_id(restore_logging):
    out = io.StringIO()
    logs.configure("info", "json", stream=out)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        structlog.get_logger("keyguard.test").warning("webhook_failed", endpoint="ep_1")
        logging.getLogger("keyguard.test").info("plain %s", "stdlib")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    transport = httpx.ASGITransport(app=Edge(app))
    async with httpx.AsyncClient(transport=transport, base_url="https://t") as c:
        r = await c.get("/")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["request_id"] == second["request_id"] == r.headers["x-request-id"]
    assert (first["level"], first["logger"], first["message"]) == (
        "warning",
        "keyguard.test",
        "webhook_failed",
    )
    assert first["endpoint"] == "ep_1"
    assert second["message"] == "plain stdlib"


def test_text_lines_outside_a_request_have_no_id(restore_logging):
    out = io.StringIO()
    logs.configure("info", "text", stream=out)
    logging.getLogger("keyguard.test").info("started")
    line = out.getvalue()
    assert line.endswith(" INFO keyguard.test: started\n")
    assert "request_id" not in line


def test_a_field_named_like_a_record_attribute_does_not_break_logging(restore_logging):
    out = io.StringIO()
    logs.configure("info", "json", stream=out)
    structlog.get_logger("keyguard.test").info("created", name="my key", args="x")
    entry = json.loads(out.getvalue())
    assert (entry["name_"], entry["args_"]) == ("my key", "x")


def test_httpx_never_logs_urls_with_their_credentials(restore_logging):
    # httpx logs each request's URL at INFO, userinfo included.
    out = io.StringIO()
    logs.configure("info", "text", stream=out)
    logging.getLogger("httpx").info("HTTP Request: GET http://ops:pw@upstream/")
    assert out.getvalue() == ""


def test_request_ids_are_unguessable_and_distinct():
    ids = {logs.new_request_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 20 for i in ids)
