"""Request bodies are JSON exactly: no type coercion, no NaN, no duplicate names.

A value of the wrong JSON type is refused, never converted: ``true`` is not a grace
period of one second, ``"10"`` is not a rate limit.
"""

from __future__ import annotations

import pytest

from helpers import counts, create_key


@pytest.mark.parametrize(
    "body",
    [
        '{"name": "a", "environment": "live", "rate_limit": {"limit": true, "period_seconds": 60}}',
        '{"name": "a", "environment": "live", "rate_limit": {"limit": "10", "period_seconds": 60}}',
        '{"name": "a", "environment": "live", "rate_limit": {"limit": 10.5, "period_seconds": 60}}',
        '{"name": "a", "environment": "live", "scopes": [1]}',
        '{"name": "a", "environment": "live", "expires_at": 1900000000}',
    ],
)
async def test_wrong_json_types_are_422_and_change_nothing(
    client, root_headers, project_id, runtime, body
):
    before = await counts(runtime)
    r = await client.post(
        f"/v1/projects/{project_id}/keys",
        content=body,
        headers=root_headers | {"Content-Type": "application/json"},
    )
    assert (r.status_code, r.json()["code"]) == (422, "validation_failed"), r.text
    assert await counts(runtime) == before


@pytest.mark.parametrize("grace", ["true", '"5"', "5.5"])
async def test_a_grace_period_must_be_a_whole_number(
    client, root_headers, project_id, runtime, grace
):
    key = await create_key(client, root_headers, project_id)
    before = await counts(runtime)
    r = await client.post(
        f"/v1/keys/{key['id']}/rotate",
        content='{"grace_seconds": ' + grace + "}",
        headers=root_headers | {"Content-Type": "application/json"},
    )
    assert (r.status_code, r.json()["code"]) == (422, "validation_failed"), r.text
    assert await counts(runtime) == before


async def test_a_session_lifetime_must_be_a_number(client, root_headers, project_id):
    key = await create_key(client, root_headers, project_id)
    r = await client.post(
        "/v1/sessions",
        json={"delivery_mode": "poll", "expires_in": "3600"},
        headers={"Authorization": f"Bearer {key['key']}"},
    )
    assert (r.status_code, r.json()["code"]) == (422, "validation_failed"), r.text


async def test_timestamps_still_arrive_as_iso_strings(client, root_headers, project_id):
    key = await create_key(client, root_headers, project_id, expires_at="2999-01-01T00:00:00Z")
    assert key["expires_at"].startswith("2999-01-01T00:00:00")


@pytest.mark.parametrize(
    "body",
    [
        '{"name": "a", "environment": "live", "environment": "test"}',
        '{"name": "a", "environment": "live", "metadata": {"x": 1, "x": 2}}',
        '{"name": "a", "environment": "live", "metadata": {"x": NaN}}',
        '{"name": "a", "environment": "live", "metadata": {"x": -Infinity}}',
        '{"name": "a", "environment": "live", "metadata": {"x": 1e400}}',
    ],
)
async def test_json_that_python_would_quietly_accept_is_refused(
    client, root_headers, project_id, runtime, body
):
    before = await counts(runtime)
    r = await client.post(
        f"/v1/projects/{project_id}/keys",
        content=body,
        headers=root_headers | {"Content-Type": "application/json"},
    )
    assert (r.status_code, r.json()["code"]) == (422, "validation_failed"), r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert "not valid JSON" in r.json()["detail"]
    assert await counts(runtime) == before


async def test_the_same_name_in_different_objects_is_fine(client, root_headers, project_id):
    key = await create_key(
        client,
        root_headers,
        project_id,
        environment="live",
        metadata={"a": {"x": 1}, "b": {"x": 2}},
    )
    assert key["metadata"] == {"a": {"x": 1}, "b": {"x": 2}}


async def test_an_oversized_chunked_body_is_413_not_a_parse_error(
    client, root_headers, project_id, runtime
):
    async def chunks():
        yield b'{"name": "a", "environment": "live", "metadata": {"x": "'
        for _ in range(40):
            yield b"x" * 65_536
        yield b'"}}'

    before = await counts(runtime)
    r = await client.post(
        f"/v1/projects/{project_id}/keys",
        content=chunks(),
        headers=root_headers | {"Content-Type": "application/json"},
    )
    assert (r.status_code, r.json()["code"]) == (413, "payload_too_large"), r.text
    assert await counts(runtime) == before


async def test_an_oversized_chunked_non_json_body_is_413_too(client, root_headers, project_id):
    async def chunks():
        for _ in range(40):
            yield b"x" * 65_536

    r = await client.post(
        f"/v1/projects/{project_id}/keys",
        content=chunks(),
        headers=root_headers | {"Content-Type": "text/plain"},
    )
    assert (r.status_code, r.json()["code"]) == (413, "payload_too_large"), r.text


async def test_a_lone_surrogate_in_metadata_is_refused_not_a_server_error(
    client, root_headers, project_id, runtime
):
    before = await counts(runtime)
    r = await client.post(
        f"/v1/projects/{project_id}/keys",
        content='{"name": "a", "environment": "live", "metadata": {"x": "\\ud800"}}',
        headers=root_headers | {"Content-Type": "application/json"},
    )
    assert r.status_code == 422, r.text
    assert await counts(runtime) == before
