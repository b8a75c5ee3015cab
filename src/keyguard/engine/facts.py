"""The request as the engine sees it: credentials plus facts, gathered by a door."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, repr=False)
class Credentials:
    """A presented key. ``secret`` is None for a signed request (the id alone travels)."""

    key_id: str
    secret: str | None

    def __repr__(self) -> str:
        return f"Credentials(key_id={self.key_id!r}, secret=<redacted>)"


@dataclass(slots=True, repr=False)
class RequestFacts:
    """Everything a check may look at. Doors fill in what they know; the rest stays None."""

    client_ip: str | None = None
    origin: str | None = None
    referer: str | None = None
    totp: str | None = None
    method: str = "GET"
    path_with_query: str = "/"
    body: bytes | None = None
    timestamp: str | None = None
    signature: str | None = None
    client_cert_der: bytes | None = None
    https: bool = True

    def __repr__(self) -> str:
        return f"RequestFacts(method={self.method!r}, path={self.path_with_query!r})"
