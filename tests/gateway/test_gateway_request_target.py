"""The request target cannot leave the upstream prefix, and is forwarded byte for byte."""

from __future__ import annotations

from typing import Any

import pytest

from keyguard.gateway.errors import InvalidPath
from keyguard.gateway.target import checked_target

ESCAPES = [
    b"/../admin/secret",
    b"/%2e%2e/admin/secret",
    b"/%2E%2E/admin/secret",
    b"/.%2E/admin/secret",
    b"/%2e./admin/secret",
    b"/a/./b",
    b"/a/%2e/b",
    b"/a/..",
    b"/..;/admin/secret",
    b"/..%2fadmin/secret",
    b"/a\\..\\admin",
    b"/a%5c..%5cadmin",
    b"//evil.example/x",
    b"*",
]


@pytest.mark.parametrize("target", ESCAPES)
async def test_dot_segments_backslashes_and_non_paths_are_refused_before_the_upstream(
    wire: Any, target: bytes
) -> None:
    before = len(wire.seen)
    reply = await wire.send(target)
    assert reply.status == 400, reply.body
    assert reply.values(b"content-type") == [b"application/problem+json"]
    assert reply.json()["code"] == "invalid_path"
    assert len(wire.seen) == before  # nothing reached the upstream


async def test_refusal_happens_even_without_a_key(wire: Any) -> None:
    reply = await wire.send(b"/../admin/secret", auth=False)
    assert (reply.status, reply.json()["code"]) == (400, "invalid_path")


async def test_a_nested_path_and_its_query_reach_the_upstream_byte_exact(wire: Any) -> None:
    reply = await wire.send(b"/v1/a.b/..c/%2Fx%20y?q=%2e%2e&b=%2F&c=a/../b&d")
    assert reply.status == 200, reply.body
    assert wire.seen[-1].request_line == (
        b"GET /api/v1/a.b/..c/%2Fx%20y?q=%2e%2e&b=%2F&c=a/../b&d HTTP/1.1"
    )


async def test_the_root_path_maps_to_the_upstream_prefix(wire: Any) -> None:
    reply = await wire.send(b"/")
    assert reply.status == 200, reply.body
    assert wire.seen[-1].request_line == b"GET /api/ HTTP/1.1"


def _scope(raw_path: bytes, query: bytes = b"") -> dict[str, Any]:
    return {"path": raw_path.decode("latin-1"), "raw_path": raw_path, "query_string": query}


@pytest.mark.parametrize("target", [t for t in ESCAPES if t != b"*"] + [b"*", b"", b"a/b"])
def test_checked_target_refuses_every_escape(target: bytes) -> None:
    with pytest.raises(InvalidPath):
        checked_target(_scope(target))


def test_checked_target_refuses_bytes_outside_printable_ascii() -> None:
    with pytest.raises(InvalidPath):
        checked_target(_scope("/caf\u00e9".encode()))
    with pytest.raises(InvalidPath):
        checked_target(_scope(b"/a", b"q=\x01"))


def test_checked_target_keeps_ordinary_paths_and_queries_as_sent() -> None:
    assert checked_target(_scope(b"/v1/.well-known/x", b"a=1&b=%2F")) == (
        b"/v1/.well-known/x?a=1&b=%2F"
    )
    assert checked_target(_scope(b"/group%2Fproject/...")) == b"/group%2Fproject/..."
