"""``keyguard usage``: a key's or a project's usage in the terminal, for operators without
the dashboard (CONTRACT §10). Reads the database of the data directory, as ``keyguard
audit verify`` does; what the server counted in its last few seconds (one flush
interval) may not be there yet."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from keyguard.cli._config import (
    ConfigurationError,
    existing_database_settings,
    start_runtime,
)
from keyguard.clock import utc_from_ts
from keyguard.errors import KeyguardError
from keyguard.usage import service as usage
from keyguard.usage.views import Usage

BLOCKS = "▁▂▃▄▅▆▇█"
_SPAN = re.compile(r"(\d+)([mhd])")
_UNITS = {"m": 60, "h": 3600, "d": 86400}


def parse_since(text: str) -> timedelta:
    """``90m``, ``24h``, ``30d`` → a duration (at least a minute, at most 2 years)."""
    found = _SPAN.fullmatch(text.strip())
    if not found:
        raise typer.BadParameter("use a number and m, h or d, e.g. 90m, 24h, 30d")
    seconds = int(found[1]) * _UNITS[found[2]]
    if not 60 <= seconds <= 730 * 86400:
        raise typer.BadParameter("from 1m to 730d")
    return timedelta(seconds=seconds)


def granularity_for(span: timedelta) -> str:
    """The finest granularity that keeps the series within the API's 2,000 points."""
    if span <= timedelta(hours=24):
        return "minute"
    return "hour" if span <= timedelta(days=60) else "day"


def sparkline(values: list[int], width: int = 60) -> str:
    """One block per value, or per run of values summed when there are more than
    ``width`` (so a day of minutes fits a line)."""
    per = max(1, -(-len(values) // width))
    sums = [sum(values[i : i + per]) for i in range(0, len(values), per)]
    top = max(sums, default=0)
    if top == 0:
        return BLOCKS[0] * len(sums)
    return "".join(BLOCKS[round(v / top * (len(BLOCKS) - 1))] for v in sums)


def _table(title: str, view: Usage) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    totals = view.totals
    table.add_row("requests", f"{totals.requests:,}")
    table.add_row("succeeded", f"{totals.succeeded:,}")
    table.add_row("refused", f"{totals.refused:,}")
    for code, n in sorted(totals.by_code.items(), key=lambda item: -item[1]):
        table.add_row(f"  {escape(code)}", f"{n:,}")
    last = view.last_used_at.strftime("%Y-%m-%d %H:%M:%S UTC") if view.last_used_at else "never"
    table.add_row("last used", last)
    # Stored values are text, never markup (a verify API caller chose this one).
    table.add_row("last IP", escape(view.last_ip or "-"))
    return table


def usage_command(
    key_id: Annotated[str | None, typer.Argument(help="A key id.")] = None,
    project: Annotated[str | None, typer.Option("--project", help="A project id.")] = None,
    since: Annotated[str, typer.Option(help="How far back: 90m, 24h, 30d.")] = "24h",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    data: Annotated[
        Path | None, typer.Option("--data", help="Data directory (default ./keyguard-data).")
    ] = None,
) -> None:
    """Usage of a key (KEY) or of a project (--project P): totals, refusals by code, last
    use, a sparkline of the series and, for a project, its busiest keys."""
    if (key_id is None) == (project is None):
        raise typer.BadParameter("give a key id or --project, not both")
    span = parse_since(since)
    granularity = granularity_for(span)
    try:
        settings = existing_database_settings(data)
    except ConfigurationError as error:
        typer.echo(f"keyguard usage: {error}", err=True)
        raise typer.Exit(2) from None

    async def read() -> Usage:
        runtime = await start_runtime(settings)
        try:
            end = utc_from_ts(runtime.clock.now())
            start = end - span
            if key_id is not None:
                return await usage.key_usage(
                    runtime, key_id, start=start, end=end, granularity=granularity
                )
            assert project is not None
            return await usage.project_usage(
                runtime, project, start=start, end=end, granularity=granularity
            )
        finally:
            await runtime.close()

    try:
        view = asyncio.run(read())
    except (KeyguardError, ConfigurationError) as error:
        typer.echo(f"keyguard usage: {error}", err=True)
        raise typer.Exit(1) from None
    counts = [point.requests for point in view.series]
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "key_id": key_id,
                    "project_id": project,
                    "granularity": granularity,
                    "totals": asdict(view.totals),
                    "series": counts,
                    "busiest_keys": [[k.key_id, k.requests] for k in view.busiest_keys],
                }
            )
        )
        return
    console = Console()
    subject = f"key {key_id}" if key_id else f"project {project}"
    console.print(_table(f"Usage of {subject}, last {since} (per {granularity})", view))
    per = max(1, -(-len(counts) // 60))
    unit = f"{granularity}s" if per == 1 else f"{per} {granularity}s each"
    console.print(f"{sparkline(counts)}  ({unit}, oldest first)", soft_wrap=True)
    if view.busiest_keys:
        busiest = Table(title="Busiest keys", title_justify="left")
        busiest.add_column("key")
        busiest.add_column("requests", justify="right")
        for item in view.busiest_keys:
            busiest.add_row(item.key_id, f"{item.requests:,}")
        console.print(busiest)
