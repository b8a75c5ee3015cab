"""An OpenAPI 3 document read into operations and their security requirements, or refused
with a message that says what to fix."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_documents import BANKING_YAML, minimal

from keyguard.gateway.openapi import (
    OpenApiError,
    base_path,
    load_route_table,
    parse_document,
    read_operations,
)
from keyguard.gateway.routes import OPEN, Alternative

KEY = Alternative(key=True)


def token(*scopes: str) -> Alternative:
    return Alternative(token=True, token_scopes=tuple(sorted(scopes)))


def security_of(document: dict[str, Any]) -> dict[tuple[str, str], tuple[Alternative, ...]]:
    return {(op.method, op.path): op.security for op in read_operations(document)}


def test_seed_002_document_gives_each_operation_its_requirements() -> None:
    found = security_of(parse_document(BANKING_YAML, "banking.yaml"))
    both_read = Alternative(key=True, token=True, token_scopes=("banking/read",))
    assert found == {
        ("GET", "/"): (KEY,),
        ("GET", "/apiDoc"): (OPEN,),
        ("GET", "/products"): (OPEN,),
        ("GET", "/accounts"): (both_read,),  # the top-level requirement
        ("POST", "/accounts"): (
            Alternative(key=True, token=True, token_scopes=("banking/write",)),
        ),
        ("GET", "/accounts/mine"): (token("banking/read"),),
        ("GET", "/accounts/{accountId}"): (token("banking/read"),),
        ("DELETE", "/accounts/{accountId}"): (
            Alternative(key=True, token=True, token_scopes=("banking/admin", "banking/write")),
        ),
        ("GET", "/reports/{year}-{month}.json"): (KEY,),
        ("GET", "/status"): (KEY, token()),
    }


def test_json_and_yaml_give_the_same_operations(tmp_path: Path) -> None:
    as_yaml = tmp_path / "banking.yaml"
    as_yaml.write_text(BANKING_YAML)
    as_json = tmp_path / "banking.json"
    as_json.write_text(json.dumps(yaml.safe_load(BANKING_YAML)))
    assert load_route_table(as_yaml).operations == load_route_table(as_json).operations


@pytest.mark.parametrize(
    ("scheme", "kind"),
    [
        ({"type": "apiKey", "in": "header", "name": "API-Key"}, KEY),
        ({"type": "apiKey", "in": "query", "name": "api_key"}, KEY),
        ({"type": "oauth2", "flows": {}}, token("s")),
        ({"type": "openIdConnect", "openIdConnectUrl": "https://x/.well-known"}, token("s")),
        ({"type": "http", "scheme": "bearer"}, token("s")),
        ({"type": "http", "scheme": "Bearer"}, token("s")),  # case-insensitive (RFC 9110)
    ],
)
def test_the_scheme_type_decides_the_credential_not_its_name(
    scheme: dict[str, Any], kind: Alternative
) -> None:
    # Named "apiKey" whatever its type: the name means nothing to the gateway.
    document = minimal(
        {"/x": {"get": {"security": [{"apiKey": ["s"] if kind.token else []}]}}},
        components={"securitySchemes": {"apiKey": scheme}},
    )
    assert security_of(document) == {("GET", "/x"): (kind,)}


@pytest.mark.parametrize(
    ("scheme", "described"),
    [
        ({"type": "http", "scheme": "basic"}, "http basic"),
        ({"type": "http", "scheme": "digest"}, "http digest"),
        ({"type": "mutualTLS"}, "mutualTLS"),
        ({"type": "cookie-magic"}, "cookie-magic"),
    ],
)
def test_a_scheme_the_gateway_cannot_enforce_is_refused_by_name(
    scheme: dict[str, Any], described: str
) -> None:
    document = minimal(
        {"/x": {"get": {"security": [{"partnerLogin": []}]}}},
        components={"securitySchemes": {"partnerLogin": scheme}},
    )
    with pytest.raises(OpenApiError, match="cannot enforce") as refused:
        read_operations(document)
    assert "'partnerLogin'" in str(refused.value)
    assert described in str(refused.value)


def test_an_unenforceable_scheme_nobody_requires_is_harmless() -> None:
    document = minimal({"/x": {"get": {"security": [{"key": []}]}}})
    document["components"]["securitySchemes"]["basic"] = {"type": "http", "scheme": "basic"}  # type: ignore[index]
    assert security_of(document) == {("GET", "/x"): (KEY,)}


@pytest.mark.parametrize(
    "document",
    [
        minimal({"/x": {"get": {"security": [{"nope": []}]}}}),
        minimal({"/x": {"get": {}}}, security=[{"key": [], "nope": []}]),
        minimal({"/x": {"get": {"security": [{"nope": []}]}}}, components={}),
    ],
)
def test_an_undefined_scheme_is_refused(document: dict[str, Any]) -> None:
    with pytest.raises(OpenApiError, match=r"'nope' is not defined in components\.securitySchemes"):
        read_operations(document)


def test_the_operation_says_where_the_undefined_scheme_is_required() -> None:
    with pytest.raises(OpenApiError, match=re.escape("POST /accounts/{id}")):
        read_operations(minimal({"/accounts/{id}": {"post": {"security": [{"nope": []}]}}}))


@pytest.mark.parametrize(
    "security",
    [
        None,  # no requirement anywhere: the document declares the operation open
        [],
        [{}],
    ],
)
def test_no_requirement_means_no_credentials(security: list[Any] | None) -> None:
    operation: dict[str, Any] = {} if security is None else {"security": security}
    assert security_of(minimal({"/x": {"get": operation}})) == {("GET", "/x"): (OPEN,)}


def test_operation_security_replaces_the_top_level_one_even_when_empty() -> None:
    document = minimal(
        {"/open": {"get": {"security": []}}, "/default": {"get": {}}},
        security=[{"key": []}],
    )
    assert security_of(document) == {("GET", "/open"): (OPEN,), ("GET", "/default"): (KEY,)}


def test_alternatives_are_ored_and_each_one_ands_its_schemes() -> None:
    document = minimal(
        {"/x": {"get": {"security": [{"key": [], "token": ["a"]}, {"token": ["b", "a"]}, {}]}}}
    )
    assert security_of(document) == {
        ("GET", "/x"): (
            Alternative(key=True, token=True, token_scopes=("a",)),
            token("a", "b"),
            OPEN,
        )
    }


def test_two_token_schemes_in_one_alternative_need_both_scope_lists_in_one_token() -> None:
    document = minimal({"/x": {"get": {"security": [{"token": ["a"], "oauth": ["b"]}]}}})
    document["components"]["securitySchemes"]["oauth"] = {"type": "oauth2", "flows": {}}  # type: ignore[index]
    assert security_of(document) == {("GET", "/x"): (token("a", "b"),)}


def test_an_api_key_requirements_list_names_the_key_scopes_it_needs() -> None:
    # OpenAPI 3.1 lets other scheme types list roles; Keyguard keys have scopes.
    document = minimal({"/x": {"get": {"security": [{"key": ["photos:read"]}]}}})
    assert security_of(document) == {
        ("GET", "/x"): (Alternative(key=True, key_scopes=("photos:read",)),)
    }


def test_an_internal_scheme_reference_is_followed() -> None:
    document = minimal({"/x": {"get": {"security": [{"alias": []}]}}})
    document["components"]["securitySchemes"]["alias"] = {  # type: ignore[index]
        "$ref": "#/components/securitySchemes/key"
    }
    assert security_of(document) == {("GET", "/x"): (KEY,)}


@pytest.mark.parametrize(
    "ref", ["other.yaml#/components/securitySchemes/key", "#/components/nowhere", "#/a/~"]
)
def test_an_external_or_broken_scheme_reference_is_refused(ref: str) -> None:
    document = minimal({"/x": {"get": {"security": [{"alias": []}]}}})
    document["components"]["securitySchemes"]["alias"] = {"$ref": ref}  # type: ignore[index]
    with pytest.raises(OpenApiError, match="'alias'"):
        read_operations(document)


def test_a_path_item_reference_is_refused_rather_than_read_as_no_operations() -> None:
    with pytest.raises(OpenApiError, match=r"/x.*\$ref"):
        read_operations(minimal({"/x": {"$ref": "#/components/pathItems/x"}}))


def test_extensions_and_non_operation_fields_are_not_operations() -> None:
    document = minimal(
        {
            "x-internal": {"get": {}},
            "/x": {"summary": "s", "parameters": [], "x-rate": 1, "get": {}, "servers": []},
        }
    )
    assert security_of(document) == {("GET", "/x"): (OPEN,)}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("openapi: 3.0.0\npaths: {\n", "not valid YAML"),
        ('{"openapi": "3.0.0", "paths": {', "not valid JSON"),
        ("- just\n- a list\n", "not an OpenAPI document"),
        ("", "not an OpenAPI document"),
        ('swagger: "2.0"\npaths: {}\n', "not an OpenAPI 3 document"),
        ("openapi: 2.0.0\npaths: {}\n", "not an OpenAPI 3 document"),
        ("openapi: 3.0\npaths: {}\n", "not an OpenAPI 3 document"),  # a YAML float
        ("info: {}\npaths: {}\n", "not an OpenAPI 3 document"),
        ("openapi: 3.0.0\npaths: [1]\n", "paths"),
        ("openapi: 3.0.0\npaths:\n  x: {}\n", "must start with '/'"),
        ("openapi: 3.0.0\npaths:\n  /x: [1]\n", "/x"),
        ("openapi: 3.0.0\npaths:\n  /x:\n    get: 1\n", "GET /x"),
        ("openapi: 3.0.0\nsecurity: {}\npaths: {}\n", "security"),
        ("openapi: 3.0.0\npaths:\n  /x:\n    get:\n      security: [[]]\n", "GET /x"),
        ("openapi: 3.0.0\npaths:\n  /x:\n    get:\n      security: [{key: 1}]\n", "GET /x"),
    ],
)
def test_a_document_that_is_not_openapi_3_is_refused_plainly(text: str, message: str) -> None:
    with pytest.raises(OpenApiError, match=message):
        read_operations(parse_document(text, "api.json" if text.startswith("{") else "api.yaml"))


def test_a_missing_file_is_refused_with_its_name(tmp_path: Path) -> None:
    with pytest.raises(OpenApiError, match=r"missing\.yaml"):
        load_route_table(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("servers", "expected"),
    [
        (None, ""),
        ([], ""),
        ([{"url": "https://api.example.com"}], ""),
        ([{"url": "https://api.example.com/"}], ""),
        ([{"url": "https://api.example.com/banking/"}], "/banking"),
        ([{"url": "/v1"}, {"url": "https://other/v2"}], "/v1"),  # the first one
        ([{"url": "v1/api"}], "/v1/api"),
        (
            [
                {
                    "url": "https://{host}/{base}",
                    "variables": {"host": {"default": "x"}, "base": {"default": "v2"}},
                }
            ],
            "/v2",
        ),
    ],
)
def test_the_base_path_is_the_path_of_the_first_server(
    servers: list[Any] | None, expected: str
) -> None:
    document = minimal({}) if servers is None else minimal({}, servers=servers)
    assert base_path(document) == expected


def test_a_server_variable_without_a_default_is_refused() -> None:
    with pytest.raises(OpenApiError, match="'base'"):
        base_path(minimal({}, servers=[{"url": "https://x/{base}", "variables": {}}]))


def test_the_route_table_cannot_be_changed_after_start_up(tmp_path: Path) -> None:
    path = tmp_path / "banking.yaml"
    path.write_text(BANKING_YAML)
    table = load_route_table(path)
    operation = table.operations[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        operation.security = ()  # type: ignore[misc]
    assert isinstance(table.operations, tuple)
    assert isinstance(operation.security, tuple)
