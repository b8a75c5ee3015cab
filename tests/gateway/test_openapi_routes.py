"""Method + request path → the operation the document declares (OpenAPI path templating),
with the base path of ``servers[0]`` in front; anything else is not declared."""

from __future__ import annotations

import re
from typing import Any

import pytest
from openapi_documents import BANKING_YAML, minimal

from keyguard.gateway.openapi import OpenApiError, parse_document, route_table
from keyguard.gateway.routes import OPEN, RouteTable

BANKING = route_table(parse_document(BANKING_YAML, "banking.yaml"))


def declared(table: RouteTable, method: str, path: str) -> str | None:
    operation = table.match(method, path)
    return None if operation is None else f"{operation.method} {operation.path}"


@pytest.mark.parametrize(
    ("method", "path", "operation"),
    [
        ("GET", "/banking/", "GET /"),
        ("GET", "/banking/apiDoc", "GET /apiDoc"),
        ("GET", "/banking/accounts", "GET /accounts"),
        ("POST", "/banking/accounts", "POST /accounts"),
        ("GET", "/banking/accounts/mine", "GET /accounts/mine"),  # the literal path first
        ("GET", "/banking/accounts/ca34f402", "GET /accounts/{accountId}"),
        ("DELETE", "/banking/accounts/ca34f402", "DELETE /accounts/{accountId}"),
        ("GET", "/banking/reports/2024-05.json", "GET /reports/{year}-{month}.json"),
        ("GET", "/banking/accounts/a%20b", "GET /accounts/{accountId}"),
    ],
)
def test_declared_operations_are_found(method: str, path: str, operation: str) -> None:
    assert declared(BANKING, method, path) == operation


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/accounts"),  # without the base path
        ("GET", "/banking"),  # GET / is /banking/, not /banking
        ("GET", "/banking/accounts/"),  # a parameter is one non-empty segment
        ("GET", "/banking/accounts/a/b"),
        ("GET", "/banking/accounts/mine/x"),
        ("GET", "/banking/apidoc"),  # paths are case-sensitive
        ("GET", "/banking/reports/2024.json"),
        ("GET", "/banking/nowhere"),
        ("PUT", "/banking/accounts"),  # the path is declared, the method is not
        ("HEAD", "/banking/accounts"),  # not implied by GET
        ("OPTIONS", "/banking/accounts"),
        ("DELETE", "/banking/accounts/mine"),  # /accounts/mine is the path, without DELETE
        ("GET", "/banking/banking/accounts"),
    ],
)
def test_anything_else_is_not_declared(method: str, path: str) -> None:
    assert declared(BANKING, method, path) is None


def test_percent_encoded_letters_name_the_same_path() -> None:
    """An upstream decodes ``%6E`` to ``n`` before routing: so must the match, or
    ``/admi%6E`` would pass as the open ``/{page}`` and reach the upstream's ``/admin``."""
    table = route_table(
        minimal(
            {"/admin": {"get": {"security": [{"key": []}]}}, "/{page}": {"get": {"security": []}}}
        )
    )
    for path in ("/admin", "/admi%6E", "/admi%6e", "/%61%64%6d%69%6e"):
        assert declared(table, "GET", path) == "GET /admin", path
    assert declared(table, "GET", "/other") == "GET /{page}"


def _two_readings(inner: Any, outer: Any) -> RouteTable:
    return route_table(
        minimal(
            {
                "/files/{name}": {"get": {"security": outer}},
                "/files/{dir}/{name}": {"get": {"security": inner}},
            }
        )
    )


def test_an_encoded_slash_must_mean_the_same_either_way_it_is_read() -> None:
    """Some upstreams decode ``%2F`` before routing, some do not: a path whose two readings
    have different requirements is refused rather than guessed."""
    differ = _two_readings(inner=[{"key": []}], outer=[])
    assert declared(differ, "GET", "/files/a%2Fb") is None
    assert declared(differ, "GET", "/files/a%2fb") is None
    assert declared(differ, "GET", "/files/a/b") == "GET /files/{dir}/{name}"
    same = _two_readings(inner=[{"key": []}], outer=[{"key": []}])
    assert declared(same, "GET", "/files/a%2Fb") == "GET /files/{name}"
    # Undeclared when read with the slash decoded: refused too.
    only_one = route_table(minimal({"/files/{name}": {"get": {}}}))
    assert declared(only_one, "GET", "/files/a%2Fb") is None


def test_the_search_backs_out_of_a_literal_path_that_leads_nowhere() -> None:
    table = route_table(
        minimal({"/a/mine/y": {"get": {}}, "/a/{id}/x": {"get": {"security": [{"key": []}]}}})
    )
    assert declared(table, "GET", "/a/mine/x") == "GET /a/{id}/x"
    assert declared(table, "GET", "/a/mine/y") == "GET /a/mine/y"


def test_a_more_literal_template_segment_is_tried_first() -> None:
    table = route_table(minimal({"/r/{id}": {"get": {}}, "/r/{id}.json": {"post": {}}}))
    assert declared(table, "POST", "/r/7.json") == "POST /r/{id}.json"
    assert declared(table, "GET", "/r/7") == "GET /r/{id}"
    assert declared(table, "GET", "/r/7.json") is None  # that path has no GET


def test_templates_differing_only_in_parameter_names_share_one_path() -> None:
    table = route_table(minimal({"/u/{id}": {"get": {}}, "/u/{userId}": {"delete": {}}}))
    assert declared(table, "DELETE", "/u/7") == "DELETE /u/{userId}"
    assert declared(table, "GET", "/u/7") == "GET /u/{id}"


def test_the_same_operation_declared_twice_is_refused() -> None:
    with pytest.raises(OpenApiError, match=re.escape("GET /u/{id} and GET /u/{userId}")):
        route_table(minimal({"/u/{id}": {"get": {}}, "/u/{userId}": {"get": {}}}))


@pytest.mark.parametrize("path", ["/u/{id", "/u/id}", "/u/{}", "/u/{a{b}}"])
def test_a_malformed_template_is_refused(path: str) -> None:
    with pytest.raises(OpenApiError, match="template"):
        route_table(minimal({path: {"get": {}}}))


def test_without_servers_paths_start_at_the_root() -> None:
    table = route_table(minimal({"/": {"get": {"security": []}}}))
    operation = table.match("GET", "/")
    assert operation is not None
    assert operation.security == (OPEN,)
    assert table.match("GET", "/x") is None


def test_a_long_path_is_matched_without_recursing_per_segment() -> None:
    table = route_table(minimal({"/{a}": {"get": {}}}))
    assert table.match("GET", "/x" * 5000) is None
