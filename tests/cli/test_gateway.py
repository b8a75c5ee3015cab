"""``keyguard gateway`` start-up."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from keyguard.cli._config import ConfigurationError
from keyguard.cli.gateway import log_operations, read_openapi, warn_if_state_is_per_process
from keyguard.settings import Settings

KEYGUARD = [sys.executable, "-m", "keyguard.cli"]


def test_start_up_without_redis_warns_that_replay_totp_and_rate_limits_are_per_process(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="keyguard.gateway"):
        warn_if_state_is_per_process(Settings(data_dir=tmp_path, redis_url=None))
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    for part in ("replay caches", "TOTP code reuse", "rate limits", "per process"):
        assert part in message
    assert "keyguard serve" in message
    assert "KEYGUARD_REDIS_URL" in message


def test_start_up_with_redis_does_not_warn(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="keyguard.gateway"):
        warn_if_state_is_per_process(Settings(data_dir=tmp_path, redis_url="redis://r:6379/0"))
    assert caplog.records == []


# ---- --openapi: a document the gateway cannot enforce stops it before anything starts ----

GOOD_OPENAPI = """\
openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /apiDoc:
    get: {security: []}
  /accounts:
    get: {security: [{apiKey: []}]}
components:
  securitySchemes:
    apiKey: {type: apiKey, in: header, name: API-Key}
"""


@pytest.mark.parametrize(
    ("document", "message"),
    [
        pytest.param("openapi: 3.0.3\npaths: {\n", "not valid YAML at line", id="not-yaml"),
        pytest.param('swagger: "2.0"\npaths: {}\n', "not an OpenAPI 3 document", id="swagger-2"),
        pytest.param(
            GOOD_OPENAPI.replace("[{apiKey: []}]", "[{partnerKey: []}]"),
            "GET /accounts: security scheme 'partnerKey' is not defined",
            id="undefined-scheme",
        ),
    ],
)
def test_a_document_the_gateway_cannot_enforce_stops_it_at_start_up(
    tmp_path: Path, document: str, message: str
) -> None:
    path = tmp_path / "api.yaml"
    path.write_text(document)
    data = tmp_path / "data"
    command = ["gateway", "--upstream", "http://127.0.0.1:9", "--openapi", str(path)]
    r = subprocess.run(
        [*KEYGUARD, *command, "--port", "0", "--data", str(data)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("KEYGUARD_")},
    )
    assert r.returncode == 2, r.stdout + r.stderr
    last = r.stderr.splitlines()[-1]
    assert last.startswith(f"keyguard gateway: --openapi {path}: "), r.stderr
    assert message in last, r.stderr
    assert "Traceback" not in r.stderr
    assert not data.exists(), "nothing was created"


def test_read_openapi_gives_the_table_once_and_says_what_it_enforces(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "api.yaml"
    path.write_text(GOOD_OPENAPI)
    routes = read_openapi(path)
    assert [(op.method, op.path) for op in routes.operations] == [
        ("GET", "/apiDoc"),
        ("GET", "/accounts"),
    ]
    with caplog.at_level(logging.INFO, logger="keyguard.gateway"):
        log_operations(path, routes)
    (record,) = caplog.records
    assert record.getMessage() == (
        f"enforcing 2 operations of {path} (1 need no credentials; any other is refused)"
    )


@pytest.mark.parametrize(
    ("name", "document", "message"),
    [
        ("api.json", "[]", "api.json: not an OpenAPI document"),
        (
            "api.yaml",
            GOOD_OPENAPI.replace("{type: apiKey, in: header, name: API-Key}", "{type: mutualTLS}"),
            "cannot enforce security scheme 'apiKey' (mutualTLS)",
        ),
        ("api.json", None, "api.json: cannot read it (No such file or directory)"),
    ],
)
def test_a_bad_document_is_a_configuration_error(
    tmp_path: Path, name: str, document: str | None, message: str
) -> None:
    path = tmp_path / name
    if document is not None:
        path.write_text(document)
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        read_openapi(path)
