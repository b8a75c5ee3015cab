"""``keyguard master-key``: make a new master key, re-seal every recoverable secret under
it (online, in batches, resumable), and show which key seals what (docs/operations.md)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer

from keyguard.cli._config import ConfigurationError, existing_database_settings, start_runtime

master_key_app = typer.Typer(
    help="The master key: rotate it without downtime.", no_args_is_help=True
)
DataOpt = Annotated[
    Path | None,
    typer.Option("--data", help="Data directory (default ./keyguard-data or KEYGUARD_DATA_DIR)."),
]


def _fail(message: str, code: int) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@master_key_app.command("generate")
def generate() -> None:
    """Print a new master key (base64 of 32 random bytes) for KEYGUARD_MASTER_KEY."""
    from keyguard.crypto.master_key import new_master_key_text

    sys.stdout.write(new_master_key_text() + "\n")


@master_key_app.command("rotate")
def rotate(
    data: DataOpt = None,
    new: Annotated[
        bool,
        typer.Option(
            "--new",
            help="Embedded mode: first write a new master.key into the data dir (the old one "
            "moves to master.key.previous). Once; resume an interrupted run without it.",
        ),
    ] = False,
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="Values per transaction.")] = 200,
) -> None:
    """Re-seal every recoverable secret with the current master key. Safe to run while
    Keyguard serves, and again after a crash: it resumes where it stopped."""
    from keyguard.crypto.master_key import replace_master_key

    try:
        settings = existing_database_settings(data)
        if new:
            if settings.master_key is not None:
                raise ConfigurationError(
                    "--new writes the data dir's master.key; with KEYGUARD_MASTER_KEY set, put "
                    "the new key there and the old one in KEYGUARD_PREVIOUS_MASTER_KEYS instead"
                )
            replace_master_key(settings.data_dir)
    except (ConfigurationError, ValueError, OSError) as error:
        _fail(f"keyguard master-key rotate: {error}", 2)

    async def run() -> tuple[int, list[str], str]:
        from keyguard.audit import service as audit
        from keyguard.clock import utc_from_ts
        from keyguard.storage.reseal import reseal
        from keyguard.tables import SEALED_COLUMNS

        runtime = await start_runtime(settings)
        try:

            def progress(column: str, done: int) -> None:
                typer.echo(f"{column}: {done} re-sealed", err=True)

            report = await reseal(
                runtime.transaction,
                runtime.envelope,
                SEALED_COLUMNS,
                batch=batch,
                progress=progress,
            )
            kid = runtime.envelope.current_kid
            async with runtime.transaction() as session:
                await audit.record(
                    session,
                    at=utc_from_ts(runtime.clock.now()),
                    actor="cli:master-key-rotate",
                    action="master_key.rotated",
                    target=kid,
                    data={"resealed": report.resealed, "unopenable": len(report.unopenable)},
                )
            return report.resealed, report.unopenable, kid
        finally:
            await runtime.close()

    try:
        resealed, unopenable, kid = asyncio.run(run())
    except ConfigurationError as error:
        _fail(f"keyguard master-key rotate: {error}", 2)
    for where in unopenable:
        typer.secho(f"cannot open {where} with any known key", fg=typer.colors.RED, err=True)
    if unopenable:
        _fail(
            f"{resealed} re-sealed; {len(unopenable)} value(s) no known master key opens: "
            "add the key that sealed them to KEYGUARD_PREVIOUS_MASTER_KEYS and run again",
            1,
        )
    typer.echo(
        f"{resealed} value(s) re-sealed; every secret is sealed with master key {kid}. "
        "Check `keyguard master-key status` after every instance runs with this key, "
        "then retire the previous one."
    )


@master_key_app.command("status")
def status(data: DataOpt = None) -> None:
    """How many sealed values each master key id holds; the current one is marked."""
    try:
        settings = existing_database_settings(data)
    except ConfigurationError as error:
        _fail(f"keyguard master-key status: {error}", 2)

    async def run() -> tuple[dict[str, int], str]:
        from keyguard.storage.reseal import sealed_by_key
        from keyguard.tables import SEALED_COLUMNS

        runtime = await start_runtime(settings)
        try:
            counts = await sealed_by_key(runtime.sessions, SEALED_COLUMNS)
            return dict(counts), runtime.envelope.current_kid
        finally:
            await runtime.close()

    try:
        counts, kid = asyncio.run(run())
    except ConfigurationError as error:
        _fail(f"keyguard master-key status: {error}", 2)
    for key_id, count in sorted(counts.items(), key=lambda kv: kv[0] != kid):
        mark = " (current)" if key_id == kid else ""
        typer.echo(f"{key_id}{mark}: {count}")
    others = sum(n for k, n in counts.items() if k != kid)
    if others:
        typer.echo(f"{others} value(s) still need a previous key: run keyguard master-key rotate")
    else:
        typer.echo("every value is sealed with the current key: previous keys can be retired")
