"""Method + request path → the operation an API document declares (OpenAPI path
templating), from a table built once at start-up.

Paths are compared segment by segment, the base path in front of each template:

- segments are compared canonically: percent-encodings decoded, then what must be is
  encoded again, in upper case (RFC 3986 §6.2.2). An upstream routes the decoded path,
  so ``/admi%6E`` is ``/admin`` here too, never the open ``/{page}`` beside it;
- a literal segment is tried before a templated one (OpenAPI: concrete paths first), and
  templated ones with more literal characters first (``{id}.json`` before ``{id}``); a
  parameter is one non-empty segment, or part of one;
- the path decides, then the method: a declared path without the request's method is not
  declared (no falling back to a template that has it; HEAD is not implied by GET);
- an encoded slash (``%2F``) is read both ways, as some upstreams decode it before
  routing and some do not: both readings must find operations with the same
  requirements, or the request is not declared.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import quote, unquote_to_bytes

__all__ = ["OPEN", "Alternative", "Operation", "RouteTable", "canonical_segment"]

# pchar (RFC 3986 §3.3) besides the unreserved characters, which quote() always keeps.
_PCHAR_SAFE = "!$&'()*+,;=:@"
_PARAMETER = re.compile(r"\{([^{}/]+)\}")
_ENCODED_SLASH = "%2F"


@dataclass(frozen=True, slots=True)
class Alternative:
    """One security requirement object: the credentials that must all pass, and scopes."""

    key: bool = False
    token: bool = False
    key_scopes: tuple[str, ...] = ()  # sorted, so a refusal names the same scope each time
    token_scopes: tuple[str, ...] = ()

    @property
    def anonymous(self) -> bool:
        return not (self.key or self.token)


OPEN = Alternative()  # ``security: []`` or ``{}``: no credentials needed


@dataclass(frozen=True, slots=True)
class Operation:
    method: str  # upper case, as ASGI has it
    path: str  # the document's template, without the base path
    security: tuple[Alternative, ...]  # any one suffices; tried in this order


def canonical_segment(segment: str) -> str:
    """One path segment as every spelling of it compares: ``%6e`` → ``n``, ``%2f`` → ``%2F``."""
    return quote(unquote_to_bytes(segment), safe=_PCHAR_SAFE)


@dataclass(frozen=True, slots=True)
class _Node:
    literal: Mapping[str, _Node]
    templated: tuple[tuple[re.Pattern[str], _Node], ...]
    operations: Mapping[str, Operation] | None  # None: no declared path ends here


@dataclass(slots=True)
class _Builder:
    literal: dict[str, _Builder] = field(default_factory=dict)
    # shape ("{}.json") → (pattern, literal characters, node): templates differing only in
    # parameter names are one path.
    templated: dict[str, tuple[re.Pattern[str], int, _Builder]] = field(default_factory=dict)
    operations: dict[str, Operation] | None = None

    def child(self, segment: str, template: str) -> _Builder:
        parts = _PARAMETER.split(segment)  # literal, name, literal, name, …, literal
        literals = [canonical_segment(part) for part in parts[0::2]]
        if any("{" in part or "}" in part for part in parts[0::2]):
            raise ValueError(f"path template {template} is malformed (its braces)")
        if len(parts) == 1:
            return self.literal.setdefault(literals[0], _Builder())
        shape = "{}".join(literals)
        if shape not in self.templated:
            pattern = re.compile(".+?".join(re.escape(part) for part in literals))
            self.templated[shape] = (pattern, sum(map(len, literals)), _Builder())
        return self.templated[shape][2]

    def freeze(self) -> _Node:
        ordered = sorted(self.templated.values(), key=lambda entry: -entry[1])  # stable
        return _Node(
            literal=MappingProxyType({k: v.freeze() for k, v in self.literal.items()}),
            templated=tuple((pattern, node.freeze()) for pattern, _, node in ordered),
            operations=None if self.operations is None else MappingProxyType(self.operations),
        )


def _walk(node: _Node, segments: list[str], i: int) -> Mapping[str, Operation] | None:
    # Depth is bounded by the longest declared path, not by the request's.
    if i == len(segments):
        return node.operations
    segment = segments[i]
    child = node.literal.get(segment)
    if child is not None:
        found = _walk(child, segments, i + 1)
        if found is not None:
            return found
    if segment:  # a parameter is never empty
        for pattern, templated in node.templated:
            if pattern.fullmatch(segment):
                found = _walk(templated, segments, i + 1)
                if found is not None:
                    return found
    return None


class RouteTable:
    """The declared operations, ready to match requests; immutable once built."""

    __slots__ = ("_root", "base_path", "operations")

    def __init__(self, operations: Iterable[Operation], base_path: str = "") -> None:
        """``ValueError`` for a malformed template or an operation declared twice."""
        self.operations = tuple(operations)
        self.base_path = base_path.rstrip("/")
        root = _Builder()
        for operation in self.operations:
            node = root
            for segment in (self.base_path + operation.path).split("/")[1:]:
                node = node.child(segment, operation.path)
            if node.operations is None:
                node.operations = {}
            twin = node.operations.get(operation.method)
            if twin is not None:
                raise ValueError(
                    f"{twin.method} {twin.path} and {operation.method} {operation.path} "
                    "are the same operation"
                )
            node.operations[operation.method] = operation
        self._root = root.freeze()

    def match(self, method: str, path: str) -> Operation | None:
        """The operation declared for ``method`` (upper case) on the raw request ``path``
        (no query), or None."""
        if not path.startswith("/"):
            return None
        segments = [canonical_segment(segment) for segment in path.split("/")[1:]]
        found = self._find(method, segments)
        if any(_ENCODED_SLASH in segment for segment in segments):
            decoded = [part for segment in segments for part in segment.split(_ENCODED_SLASH)]
            other = self._find(method, decoded)
            if found is None or other is None or found.security != other.security:
                return None
        return found

    def _find(self, method: str, segments: list[str]) -> Operation | None:
        operations = _walk(self._root, segments, 0)
        return None if operations is None else operations.get(method)
