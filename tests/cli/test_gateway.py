"""``keyguard gateway`` start-up."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from keyguard.cli.gateway import warn_if_state_is_per_process
from keyguard.settings import Settings


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
