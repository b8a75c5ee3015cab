"""Reading an ASGI request into (headers, facts): shared by the middleware and the gateway."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from keyguard.engine.facts import RequestFacts


def header_map(scope: Mapping[str, Any]) -> dict[str, str]:
    """Lower-cased headers; repeated headers are joined with ',' as RFC 9110 §5.3 allows.

    Joining makes a duplicated credential header unparseable, so an ambiguous request is
    refused instead of one copy silently winning.
    """
    out: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        out[name] = f"{out[name]},{value}" if name in out else value
    return out


def path_with_query(scope: Mapping[str, Any]) -> str:
    raw = scope.get("raw_path") or scope["path"].encode()
    path = raw.decode("latin-1") if isinstance(raw, bytes) else str(raw)
    query = scope.get("query_string", b"")
    return f"{path}?{query.decode('latin-1')}" if query else path


def facts_from_scope(
    scope: Mapping[str, Any], headers: dict[str, str], header_prefix: str
) -> RequestFacts:
    client = scope.get("client")
    p = header_prefix.lower()
    return RequestFacts(
        client_ip=client[0] if client else None,
        origin=headers.get("origin"),
        referer=headers.get("referer"),
        totp=headers.get(f"x-{p}-totp"),
        method=scope["method"],
        path_with_query=path_with_query(scope),
        timestamp=headers.get(f"x-{p}-timestamp"),
        signature=headers.get(f"x-{p}-signature"),
        https=scope.get("scheme") == "https",
    )
