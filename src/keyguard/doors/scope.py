"""Reading an ASGI request into (headers, facts): shared by the middleware and the gateway."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from keyguard.engine.facts import RequestFacts
from keyguard.engine.ipallow import TrustedProxies, resolve_client_ip
from keyguard.wire import PROXY_CERT_HEADERS, prefixed

_NO_PROXIES = TrustedProxies()


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
    scope: Mapping[str, Any],
    headers: dict[str, str],
    header_prefix: str,
    trusted_proxies: TrustedProxies = _NO_PROXIES,
    client_cert_header: str | None = None,
) -> RequestFacts:
    """The request's facts, with the transport resolved once for every door.

    The socket peer is the client and ``scope["scheme"]`` says whether it used TLS,
    unless the peer is in ``trusted_proxies`` (``KEYGUARD_TRUSTED_PROXIES``): then the
    client is the right-most untrusted ``X-Forwarded-For`` entry, ``X-Forwarded-Proto:
    https`` (its right-most value, the nearest proxy's) counts as HTTPS, and client
    certificate headers are believed: only ``client_cert_header``
    (``KEYGUARD_CLIENT_CERT_HEADER``) when set, else the one of RFC 9440 / Envoy / nginx
    present alone (several are refused). From anyone else those headers change nothing.
    """
    client = scope.get("client")
    peer = client[0] if client else None
    own = prefixed(header_prefix)
    https = scope.get("scheme") == "https"
    client_ip: Any = peer
    forwarded_certs = None
    if trusted_proxies and trusted_proxies.trusts(peer):
        client_ip = resolve_client_ip(peer, headers.get("x-forwarded-for"), trusted_proxies)
        proto = headers.get("x-forwarded-proto")
        if proto is not None and not https:
            https = proto.rpartition(",")[2].strip().lower() == "https"
        names = (client_cert_header,) if client_cert_header else PROXY_CERT_HEADERS
        if any(name in headers for name in names):
            forwarded_certs = headers
    tls = (scope.get("extensions") or {}).get("tls")
    chain = tls.get("client_cert_chain") if tls else None
    return RequestFacts(
        client_ip=client_ip,
        origin=headers.get("origin"),
        referer=headers.get("referer"),
        totp=headers.get(own.totp),
        method=scope["method"],
        path_with_query=path_with_query(scope),
        timestamp=headers.get(own.timestamp),
        signature=headers.get(own.signature),
        client_cert_pem=chain[0] if chain else None,
        forwarded_cert_headers=forwarded_certs,
        forwarded_cert_header=client_cert_header,
        https=https,
    )
