"""The keyguard command: init prints the contract's JSON; audit verify catches tampering."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

KEYGUARD = [sys.executable, "-m", "keyguard.cli"]


def run(*args: str, data: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KEYGUARD, *args, "--data", str(data)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def initialised(tmp_path_factory) -> tuple[Path, dict]:
    data = tmp_path_factory.mktemp("kg")
    r = run(
        "init",
        "--email",
        "ops@example.com",
        "--password",
        "a long enough password",
        "--json",
        data=data,
    )
    assert r.returncode == 0, r.stderr
    return data, json.loads(r.stdout)


def test_init_prints_root_key_project_and_ca(initialised):
    _, out = initialised
    assert set(out) == {"root_key", "project_id", "ca_cert"}
    assert out["root_key"].startswith("kgroot_live_")
    assert out["project_id"].startswith("proj_")
    assert Path(out["ca_cert"]).read_text().startswith("-----BEGIN CERTIFICATE-----")


def test_init_twice_is_refused(initialised):
    data, _ = initialised
    r = run(
        "init",
        "--email",
        "b@example.com",
        "--password",
        "another long password",
        "--json",
        data=data,
    )
    assert r.returncode == 1
    assert "already initialised" in r.stderr


def test_root_key_is_stored_only_as_a_hash(initialised):
    data, out = initialised
    db = sqlite3.connect(data / "keyguard.db")
    dump = "\n".join(db.iterdump())
    assert out["root_key"][12:] not in dump


def test_weak_input_is_refused_without_traceback(tmp_path):
    r = run(
        "init", "--email", "not-an-email", "--password", "a long enough password", data=tmp_path
    )
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    r = run("init", "--email", "a@example.com", "--password", "short", data=tmp_path)
    assert r.returncode == 1


def test_audit_verify_passes_then_reports_a_tampered_row(initialised, tmp_path):
    import shutil

    data = tmp_path / "copy"
    shutil.copytree(initialised[0], data)
    ok = run("audit", "verify", data=data)
    assert ok.returncode == 0, ok.stderr
    assert "intact" in ok.stdout
    db = sqlite3.connect(data / "keyguard.db")
    db.execute("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2")
    db.commit()
    db.close()
    bad = run("audit", "verify", data=data)
    assert bad.returncode == 1
    assert "event 2" in bad.stderr
    assert "TAMPERED" in bad.stderr


@pytest.mark.parametrize("command", ["gateway --upstream", "serve --gateway-upstream"])
@pytest.mark.parametrize("url", ["ftp://example.com", "http://example.com/?q=1", "not a url"])
def test_a_bad_upstream_is_refused_before_anything_starts(
    tmp_path: Path, command: str, url: str
) -> None:
    r = run(*command.split(), url, data=tmp_path / "data")
    assert r.returncode == 2, r.stderr
    assert "upstream" in r.stderr
    assert not (tmp_path / "data").exists(), "nothing was created"
