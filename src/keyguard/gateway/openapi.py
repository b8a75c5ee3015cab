"""The upstream's OpenAPI 3 document → each operation's security requirements.

``keyguard gateway --openapi FILE`` reads the document once, at start-up, into an
immutable :class:`~keyguard.gateway.routes.RouteTable`; nothing here runs per request.

What the gateway takes from the document (OpenAPI 3.0 and 3.1, "Security Requirement
Object" and "Paths Object"):

- each operation (method + path) under ``paths``, with ``servers[0]``'s path in front;
- its ``security``: a list of alternatives (any one suffices), each a map of scheme name
  to a list (all schemes of an alternative must pass). The operation's own list replaces
  the top-level one; ``[]``, ``[{}]`` or no list anywhere means no credentials;
- what each scheme asks for, by its ``type`` in ``components.securitySchemes`` (names mean
  nothing): ``apiKey`` → a Keyguard API key in any presentation form of CONTRACT §4 (the
  list: key scopes); ``oauth2``, ``openIdConnect`` and ``http`` + ``bearer`` → an OAuth
  access token (the list: the scopes it must carry). Any other scheme an operation
  requires (http basic, mutualTLS…) cannot be checked here: the document is refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from keyguard.gateway.routes import OPEN, Alternative, Operation, RouteTable

__all__ = [
    "OpenApiError",
    "base_path",
    "load_route_table",
    "parse_document",
    "read_operations",
    "route_table",
]

# The operation fields of a path item; anything else there (summary, parameters, x-…)
# is not an operation.
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_SERVER_VARIABLE = re.compile(r"\{([^{}]*)\}")
_BAD_ESCAPE = re.compile(r"~(?![01])")  # RFC 6901 §3: "~" is only "~0" or "~1"
_SCHEMES = "components.securitySchemes"


class OpenApiError(ValueError):
    """The document cannot be enforced as written; the message says what to fix."""


def load_route_table(path: Path) -> RouteTable:
    """The route table of the document at ``path`` (``OpenApiError`` if it cannot be)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise OpenApiError(f"{path}: cannot read it ({error.strerror or error})") from None
    except UnicodeDecodeError:
        raise OpenApiError(f"{path}: not UTF-8 text") from None
    try:
        return route_table(parse_document(text, str(path)))
    except OpenApiError as error:
        raise OpenApiError(f"{path}: {error}") from None


def parse_document(text: str, name: str) -> dict[str, Any]:
    """JSON (by its ``.json`` name or a leading ``{``) or YAML, parsed safely."""
    if name.endswith(".json") or text.lstrip().startswith("{"):
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            where = f"line {error.lineno}, column {error.colno}"
            raise OpenApiError(f"not valid JSON ({error.msg} at {where})") from None
    else:
        try:
            document = yaml.safe_load(text)  # safe_load: no Python objects from the file
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise OpenApiError(f"not valid YAML{where}") from None
    if not isinstance(document, dict):
        raise OpenApiError("not an OpenAPI document (its top level must be an object)")
    return document


def route_table(document: Mapping[str, Any]) -> RouteTable:
    try:
        return RouteTable(read_operations(document), base_path(document))
    except OpenApiError:
        raise
    except ValueError as error:  # the table's own refusals: templates, duplicates
        raise OpenApiError(str(error)) from None


def read_operations(document: Mapping[str, Any]) -> tuple[Operation, ...]:
    """Every operation of the document with its requirements, in document order."""
    version = document.get("openapi")
    if not (isinstance(version, str) and version.startswith("3.")):
        found = (
            f"swagger: {document['swagger']}"
            if "swagger" in document
            else f"openapi: {version!r}"
            if "openapi" in document
            else "no 'openapi' field"
        )
        raise OpenApiError(
            f"not an OpenAPI 3 document ({found}; expected a version string such as "
            '"3.0.3" or "3.1.0")'
        )
    schemes = _Schemes(document)
    default = _alternatives(document.get("security"), schemes, "the top-level security")
    paths = document.get("paths") or {}  # 3.1 allows a document without paths
    if not isinstance(paths, dict):
        raise OpenApiError("'paths' must be an object")
    operations: list[Operation] = []
    for template, item in paths.items():
        if isinstance(template, str) and template.startswith("x-"):
            continue  # a specification extension, not a path
        if not isinstance(template, str) or not template.startswith("/"):
            raise OpenApiError(f"path {template!r} must start with '/'")
        if not isinstance(item, dict):
            raise OpenApiError(f"path {template} must be an object")
        if "$ref" in item:
            # Its operations live elsewhere: reading none would silently refuse them all.
            raise OpenApiError(f"path {template} is a $ref; inline the path item instead")
        for method in HTTP_METHODS:
            if method not in item:
                continue
            where = f"{method.upper()} {template}"
            operation = item[method]
            if not isinstance(operation, dict):
                raise OpenApiError(f"{where} must be an object")
            security = (
                _alternatives(operation["security"], schemes, where)
                if "security" in operation
                else default
            )
            operations.append(Operation(method.upper(), template, security))
    return tuple(operations)


def base_path(document: Mapping[str, Any]) -> str:
    """The path of ``servers[0].url`` ('' for none), its variables at their defaults."""
    servers = document.get("servers")
    if not servers:
        return ""
    first = servers[0] if isinstance(servers, list) else None
    if not (isinstance(first, dict) and isinstance(first.get("url"), str)):
        raise OpenApiError("servers[0] must be an object with a 'url'")
    url: str = first["url"]
    variables = first.get("variables") or {}

    def default(match: re.Match[str]) -> str:
        variable = variables.get(match.group(1)) if isinstance(variables, dict) else None
        value = variable.get("default") if isinstance(variable, dict) else None
        if not isinstance(value, str):
            raise OpenApiError(f"servers[0] variable {match.group(1)!r} has no default")
        return value

    path = urlsplit(_SERVER_VARIABLE.sub(default, url)).path.strip("/")
    return "/" + path if path else ""


# ---- security requirements ---------------------------------------------------------------


class _Schemes:
    """``components.securitySchemes``, each told apart by its type when first required."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self._document = document
        components = document.get("components") or {}
        schemes = components.get("securitySchemes") if isinstance(components, dict) else None
        self._schemes: Mapping[str, Any] = schemes if isinstance(schemes, dict) else {}

    def is_token(self, name: str, where: str) -> bool:
        """True for an access token, False for an API key; else ``OpenApiError``."""
        if name not in self._schemes:
            raise OpenApiError(f"{where}: security scheme {name!r} is not defined in {_SCHEMES}")
        scheme = self._resolve(name, self._schemes[name])
        kind = scheme.get("type")
        if kind == "apiKey":
            return False
        http = str(scheme.get("scheme", "")).lower()
        if kind in ("oauth2", "openIdConnect") or (kind == "http" and http == "bearer"):
            return True
        described = f"http {http or '(no scheme)'}" if kind == "http" else str(kind)
        raise OpenApiError(
            f"{where}: the gateway cannot enforce security scheme {name!r} ({described}); "
            "it checks API keys (type apiKey) and access tokens (oauth2, openIdConnect, "
            "http bearer)"
        )

    def _resolve(self, name: str, scheme: Any) -> Mapping[str, Any]:
        # A Reference Object: only within this document (#/…, RFC 6901), a few hops at most.
        for _ in range(8):
            if not isinstance(scheme, dict):
                break
            ref = scheme.get("$ref")
            if ref is None:
                return scheme
            if not isinstance(ref, str) or not ref.startswith("#/"):
                raise OpenApiError(
                    f"security scheme {name!r}: only references within the document "
                    f"(#/…) are followed, not {ref!r}"
                )
            scheme = self._pointer(name, ref)
        raise OpenApiError(f"security scheme {name!r} is not an object")

    def _pointer(self, name: str, ref: str) -> Any:
        node: Any = self._document
        for raw in ref[2:].split("/"):
            part = raw.replace("~1", "/").replace("~0", "~")
            if _BAD_ESCAPE.search(raw) or not isinstance(node, dict) or part not in node:
                raise OpenApiError(f"security scheme {name!r}: {ref!r} leads nowhere")
            node = node[part]
        return node


def _alternatives(security: Any, schemes: _Schemes, where: str) -> tuple[Alternative, ...]:
    if security is None or security == []:
        return (OPEN,)
    if not isinstance(security, list):
        raise OpenApiError(f"{where}: 'security' must be a list of requirement objects")
    alternatives = []
    for requirement in security:
        if not isinstance(requirement, dict):
            raise OpenApiError(f"{where}: each 'security' entry must be an object")
        key = token = False
        key_scopes: set[str] = set()
        token_scopes: set[str] = set()
        for name, scopes in requirement.items():
            if not (isinstance(scopes, list) and all(isinstance(s, str) for s in scopes)):
                raise OpenApiError(f"{where}: the scopes of {name!r} must be a list of strings")
            if schemes.is_token(str(name), where):
                token = True
                token_scopes.update(scopes)
            else:
                key = True
                key_scopes.update(scopes)
        alternatives.append(
            Alternative(key, token, tuple(sorted(key_scopes)), tuple(sorted(token_scopes)))
        )
    return tuple(alternatives)
