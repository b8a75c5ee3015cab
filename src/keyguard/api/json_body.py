"""Refuse JSON request bodies that Python's ``json`` module would quietly accept.

``json.loads`` (what FastAPI parses bodies with) takes ``NaN`` and ``Infinity``, which
are not JSON (RFC 8259 §6), numbers too large for a float (``1e400`` becomes infinity),
duplicate member names, of which the last silently wins (``{"environment": "live",
"environment": "test"}``), and lone surrogates (``"\\ud800"``), which no UTF-8 text
holds. Such a body means the client and Keyguard may disagree on what was asked, or
cannot be stored: it gets 422 ``validation_failed`` before any route sees it, and changes
nothing.

Run by the edge (:mod:`keyguard.server.edge`) for requests that carry a JSON body (the ``GET``
hot path is untouched); the body is handed on as it was received.
"""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keyguard.api.limits import refuse
from keyguard.errors import ValidationFailed


class _NotJson(ValueError):
    pass


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for name, value in pairs:
        if name in obj:
            raise _NotJson(f"the member name {name[:40]!r} appears twice in one object")
        obj[name] = value
    return obj


def _constant(name: str) -> float:
    raise _NotJson(f"{name} is not a JSON value")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _NotJson("a number is too large")
    return value


def _no_surrogates(value: object) -> None:
    # "\ud800" alone is valid JSON syntax but no Unicode text: it could not be stored or
    # sent back (UTF-8 cannot encode it), so it is refused here, before anything is written.
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _NotJson("a string holds a lone surrogate (\\ud800-\\udfff)") from None
    elif isinstance(value, dict):
        for name, item in value.items():
            _no_surrogates(name)
            _no_surrogates(item)
    elif isinstance(value, list):
        for item in value:
            _no_surrogates(item)


def check_json(body: bytes) -> None:
    """``ValidationFailed`` unless ``body`` is JSON a strict parser reads the same way."""
    try:
        _no_surrogates(
            json.loads(
                body, object_pairs_hook=_object, parse_constant=_constant, parse_float=_finite
            )
        )
    except _NotJson as error:
        raise ValidationFailed(f"the body is not valid JSON: {error}") from None
    except RecursionError:
        raise ValidationFailed("the body is nested too deeply") from None
    except ValueError:
        pass  # plain syntax errors: FastAPI reports those, with their position


def is_json(content_type: bytes | None) -> bool:
    """Whether a body of this ``Content-Type`` is parsed as JSON (no type: FastAPI tries)."""
    if content_type is None:
        return True
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


async def strict_json(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Read the whole body, refuse it (422) unless strict JSON, else hand it on as received."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            await app(scope, _replay([message], receive), send)
            return
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    if body:
        try:
            check_json(body)
        except ValidationFailed as error:
            await refuse(send, error, close=False)
            return
    whole: Message = {"type": "http.request", "body": body, "more_body": False}
    await app(scope, _replay([whole], receive), send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """``receive`` that first hands out ``messages``, then defers to the real one."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


__all__ = ["check_json", "is_json", "strict_json"]
