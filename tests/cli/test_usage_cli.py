"""keyguard usage: a key's or a project's usage in the terminal, read from the data dir."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console

from keyguard.cli.usage import _table, granularity_for, parse_since, sparkline
from keyguard.engine.facts import RequestFacts
from keyguard.engine.principals import extract_credentials
from keyguard.errors import IpNotAllowed
from keyguard.keys.service import KeySpec, create_key
from keyguard.runtime import Runtime
from keyguard.settings import Settings
from keyguard.usage.views import Usage, UsageTotals

KEYGUARD = [sys.executable, "-m", "keyguard.cli"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KEYGUARD, *args], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def counted(tmp_path_factory) -> tuple[Path, str, str]:
    """A data dir whose key was checked 7 times (5 answered, 2 refused), flushed."""
    data = tmp_path_factory.mktemp("usage-cli")
    init = run("init", "--email", "ops@example.com", "--password", "a long enough password",
               "--json", "--data", str(data))  # fmt: skip
    assert init.returncode == 0, init.stderr
    project_id = json.loads(init.stdout)["project_id"]

    async def count() -> str:
        runtime = await Runtime.start(Settings(data_dir=data))
        try:
            spec = KeySpec(name="cli", ip_allowlist=("203.0.113.0/24",))
            created = await create_key(runtime, project_id, spec, actor="test")
            credentials = extract_credentials({"authorization": f"Bearer {created.issued.key}"})
            assert credentials is not None
            for ip in ["203.0.113.5"] * 5 + ["198.51.100.1"] * 2:
                with contextlib.suppress(IpNotAllowed):  # the two refusals are the point
                    await runtime.engine.verify(credentials, RequestFacts(client_ip=ip))
            return created.key.id
        finally:
            await runtime.close()  # a clean stop flushes the counts

    key_id = asyncio.run(count())
    return data, project_id, key_id


def test_a_keys_usage_as_json(counted):
    data, _, key_id = counted
    out = run("usage", key_id, "--since", "1h", "--json", "--data", str(data))
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)
    assert shown["totals"] == {
        "requests": 7,
        "succeeded": 5,
        "refused": 2,
        "by_code": {"ip_not_allowed": 2},
    }
    assert shown["granularity"] == "minute"
    assert sum(shown["series"]) == 7


def test_a_projects_usage_as_a_table(counted):
    data, project_id, key_id = counted
    out = run("usage", "--project", project_id, "--data", str(data))
    assert out.returncode == 0, out.stderr
    assert "Busiest keys" in out.stdout
    assert key_id in out.stdout
    assert "ip_not_allowed" in out.stdout
    assert "(25 minutes each, oldest first)" in out.stdout  # a day of minutes on a line


def test_wrong_invocations_are_clear(counted, tmp_path):
    data, project_id, key_id = counted
    both = run("usage", key_id, "--project", project_id, "--data", str(data))
    assert both.returncode == 2
    assert run("usage", key_id, "--since", "soon", "--data", str(data)).returncode == 2
    missing = run("usage", key_id, "--data", str(tmp_path / "nothing"))
    assert missing.returncode == 2
    assert "no Keyguard database" in missing.stderr
    unknown = run("usage", "key_nope", "--data", str(data))
    assert unknown.returncode == 1


def test_spans_sparklines_and_granularities():
    assert parse_since("90m").total_seconds() == 5400
    assert [granularity_for(parse_since(s)) for s in ("1h", "24h", "7d", "90d")] == [
        "minute",
        "minute",
        "hour",
        "day",
    ]
    assert sparkline([0, 0, 0]) == "▁▁▁"
    assert sparkline([0, 5, 10]) == "▁▅█"
    assert sparkline([1] * 120) == "█" * 60  # pairs summed to fit a line


def test_stored_text_is_never_terminal_markup():
    at = datetime(2030, 1, 1, tzinfo=UTC)
    view = Usage(at, at, "hour", UsageTotals(1, 1, 0, {}), [], at, "[/][link=x]ip[/link]", [])
    out = StringIO()
    Console(file=out, width=100).print(_table("t", view))
    assert "[/][link=x]ip[/link]" in out.getvalue()
