"""The keyguard command: init prints the contract's JSON; audit verify catches tampering."""

from __future__ import annotations

import json
import os
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


def run_in(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The command in ``cwd`` with no KEYGUARD_* setting but ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KEYGUARD_")}
    return subprocess.run(
        [*KEYGUARD, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
        env=clean | (env or {}),
    )


def test_audit_verify_without_a_database_fails_and_creates_nothing(tmp_path: Path) -> None:
    r = run_in(tmp_path, "audit", "verify")
    assert r.returncode == 2, r.stdout + r.stderr
    database = (tmp_path / "keyguard-data" / "keyguard.db").resolve()
    assert r.stderr.strip() == f"keyguard audit verify: no Keyguard database at {database}"
    assert r.stdout == ""
    assert list(tmp_path.iterdir()) == [], "nothing was created"


@pytest.mark.parametrize("where", ["--data", "KEYGUARD_DATABASE_URL"])
def test_audit_verify_names_the_missing_database(tmp_path: Path, where: str) -> None:
    (tmp_path / "data").mkdir()
    if where == "--data":
        r = run_in(tmp_path, "audit", "verify", "--data", str(tmp_path / "data"))
        missing = tmp_path / "data" / "keyguard.db"
    else:
        missing = tmp_path / "data" / "elsewhere.db"
        r = run_in(
            tmp_path,
            "audit",
            "verify",
            env={"KEYGUARD_DATABASE_URL": f"sqlite+aiosqlite:///{missing}"},
        )
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"no Keyguard database at {missing.resolve()}" in r.stderr
    assert list((tmp_path / "data").iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


SHARED_DB = "postgresql+asyncpg://keyguard:db-password@127.0.0.1:1/keyguard"
COMMANDS = {
    "init": ["init", "--email", "ops@example.com", "--password", "a long enough password"],
    "serve": ["serve", "--port", "0"],
    "gateway": ["gateway", "--upstream", "http://127.0.0.1:9", "--port", "0"],
    "audit verify": ["audit", "verify"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize(
    ("env", "message"),
    [
        pytest.param(
            {"KEYGUARD_DATABASE_URL": SHARED_DB},
            "KEYGUARD_MASTER_KEY must be set",
            id="shared-database-without-master-key",
        ),
        pytest.param(
            {"KEYGUARD_MASTER_KEY": "not base64!"},
            "KEYGUARD_MASTER_KEY must be base64",
            id="malformed-master-key",
        ),
        pytest.param(
            {
                "KEYGUARD_DATABASE_URL": "mysql+nope://keyguard:db-password@db/keyguard",
                "KEYGUARD_MASTER_KEY": "B" * 43 + "=",
            },
            "KEYGUARD_DATABASE_URL is not a database URL Keyguard can use",
            id="unusable-database-url",
        ),
        pytest.param(
            {
                "KEYGUARD_DATABASE_URL": "postgresql+asyncpg://keyguard:db-password@db:notaport/kg",
                "KEYGUARD_MASTER_KEY": "B" * 43 + "=",
            },
            "KEYGUARD_DATABASE_URL is not a database URL Keyguard can use",
            id="database-url-with-a-bad-port",
        ),
        pytest.param(
            {"KEYGUARD_HEADER_PREFIX": "X Bad"},
            "KEYGUARD_HEADER_PREFIX: header prefix must be",
            id="invalid-setting",
        ),
        pytest.param(
            {"KEYGUARD_LOG_FORMAT": "xml"},
            "KEYGUARD_LOG_FORMAT: Input should be 'text' or 'json'",
            id="unknown-log-format",
        ),
        pytest.param(
            {"KEYGUARD_STATE_FAILURE": "sometimes"},
            "KEYGUARD_STATE_FAILURE: Input should be 'closed' or 'open'",
            id="unknown-state-failure-policy",
        ),
    ],
)
def test_a_configuration_error_is_one_line_and_exit_2(
    tmp_path: Path, command: str, env: dict[str, str], message: str
) -> None:
    data = tmp_path / "data"
    if command == "audit verify":
        # audit verify first looks for the database file: give it one to get past that.
        data.mkdir()
        (data / "keyguard.db").touch()
    r = run_in(tmp_path, *COMMANDS[command], "--data", str(data), env=env)
    assert r.returncode == 2, r.stdout + r.stderr
    # The gateway logs its start-up warning first; the error is the last line.
    assert r.stderr.splitlines()[-1].startswith(f"keyguard {command}: {message}"), r.stderr
    assert "Traceback" not in r.stderr
    assert "db-password" not in r.stderr
    assert "not base64!" not in r.stderr
    if command != "audit verify":
        assert not data.exists(), "nothing was created"


@pytest.mark.parametrize("command", [("audit", "verify"), ("serve", "--port", "0")])
def test_a_lost_master_key_is_never_silently_replaced(initialised, tmp_path, command):
    """A new master key next to an existing database would make every key unverifiable."""
    import shutil

    data = tmp_path / "copy"
    shutil.copytree(initialised[0], data)
    (data / "master.key").unlink()
    r = run(*command, data=data)
    assert r.returncode == 2, r.stderr
    assert "master.key is missing" in r.stderr
    assert "restore" in r.stderr
    assert not (data / "master.key").exists()


def test_audit_verify_with_a_kept_checkpoint_catches_an_old_backup_restored(initialised, tmp_path):
    """Issue 10, defect 6: the chain of an older copy verifies; the checkpoint kept since
    does not, because the restored log no longer extends it."""
    import shutil

    data = tmp_path / "copy"
    shutil.copytree(initialised[0], data)
    assert run("audit", "checkpoint", data=data).returncode == 0  # the signing key exists
    backup = tmp_path / "backup.db"
    shutil.copy(data / "keyguard.db", backup)
    made = run("root-key", "create", "--name", "ci", "--json", data=data)  # one more event
    assert made.returncode == 0, made.stderr
    cp = run("audit", "checkpoint", data=data)
    assert cp.returncode == 0, cp.stderr
    kept = tmp_path / "checkpoint.txt"
    kept.write_text(cp.stdout)
    ok = run("audit", "verify", "--checkpoint", str(kept), data=data)
    assert ok.returncode == 0, ok.stderr
    assert "checkpoint verified" in ok.stdout
    keys = run("audit", "checkpoint", data=data)  # same log, same key
    assert keys.stdout.splitlines()[-1] == cp.stdout.splitlines()[-1]

    shutil.copy(backup, data / "keyguard.db")  # the old backup comes back
    chain_only = run("audit", "verify", data=data)
    assert chain_only.returncode == 0, "the chain of an old copy is intact on its own"
    bad = run("audit", "verify", "--checkpoint", str(kept), data=data)
    assert bad.returncode == 1
    assert "older backup was restored" in bad.stderr
    assert "TAMPERED" in bad.stderr


def test_audit_verify_refuses_a_malformed_pinned_key(initialised, tmp_path):
    kept = tmp_path / "cp.txt"
    kept.write_text(run("audit", "checkpoint", data=initialised[0]).stdout)
    r = run("audit", "verify", "--checkpoint", str(kept), "--key", "nope", data=initialised[0])
    assert r.returncode == 2
    assert "--key" in r.stderr
    assert "Traceback" not in r.stderr


def test_audit_verify_calls_a_file_that_is_no_checkpoint_a_usage_error(initialised, tmp_path):
    kept = tmp_path / "cp.txt"
    kept.write_text("not a checkpoint\n")
    r = run("audit", "verify", "--checkpoint", str(kept), data=initialised[0])
    assert r.returncode == 2, r.stderr
    assert "is not a checkpoint" in r.stderr
    assert "TAMPERED" not in r.stderr
