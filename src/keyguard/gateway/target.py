"""The request target the gateway sends upstream: checked, then forwarded byte for byte.

The gateway forwards ``upstream prefix + raw path + ? + raw query``. Nothing may move
the request outside the upstream prefix, neither here (URL libraries resolve ``..``
while building a URL) nor at the upstream (which may decode ``%2e%2e`` or treat ``\\``
as ``/`` before routing), so :func:`checked_target` refuses with ``invalid_path``:

- a target that is not an origin-form path (``*``, or ``//host/…``, which some
  libraries read as a network-path reference to another host);
- any ``.`` or ``..`` segment, raw or percent-encoded in any case mix (``%2e``,
  ``.%2E``), also behind ``;`` path parameters (``..;/``, read as ``..`` by Tomcat and
  its kin) or an encoded slash (``..%2F``);
- backslashes, raw or percent-encoded (``%5c``);
- bytes outside printable ASCII (RFC 3986 requires them percent-encoded).

Other percent-encodings (``%2F`` inside a segment, ``%20``) pass through untouched.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, unquote_to_bytes

from keyguard.gateway.errors import InvalidPath

__all__ = ["checked_target"]

_PRINTABLE_ASCII = re.compile(rb"[\x21-\x7e]*")
_DOT_SEGMENTS = frozenset({b".", b".."})


def _has_dot_segment(path: bytes) -> bool:
    for segment in path.split(b"/"):
        # Encoded separators count as separators: the upstream may decode before routing.
        for part in re.split(rb"[/\\]", unquote_to_bytes(segment)):
            if part.split(b";", 1)[0] in _DOT_SEGMENTS:
                return True
    return False


def checked_target(scope: Mapping[str, Any]) -> bytes:
    """The raw ``path[?query]`` of the request, or :class:`InvalidPath` (see the module)."""
    raw = scope.get("raw_path")
    if not isinstance(raw, bytes) or not raw:
        # Servers that omit raw_path (optional in ASGI) decoded it already.
        raw = quote(scope["path"], safe="/!$&'()*+,;=:@~").encode("ascii")
    raw = raw.split(b"?", 1)[0]  # some servers leave the query in raw_path
    query: bytes = scope.get("query_string") or b""
    if not raw.startswith(b"/") or raw.startswith(b"//"):
        raise InvalidPath("the request target must be a path starting with a single '/'")
    if not (_PRINTABLE_ASCII.fullmatch(raw) and _PRINTABLE_ASCII.fullmatch(query)):
        raise InvalidPath("the request target must be printable ASCII")
    if b"\\" in raw or b"\\" in unquote_to_bytes(raw):
        raise InvalidPath("the request path must not contain backslashes")
    if _has_dot_segment(raw):
        raise InvalidPath("the request path must not contain '.' or '..' segments")
    return raw + b"?" + query if query else raw
