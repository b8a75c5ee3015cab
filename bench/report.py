"""Result rows and the table run.py prints. Every check returns a list of ``Row``."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Row:
    """One printed figure. ``target`` is informational ("<= 10 us"), never asserted."""

    section: str
    name: str
    value: float
    unit: str
    note: str = ""
    target: str = ""
    meets: bool | None = None


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3f}"


def render(rows: Iterable[Row]) -> str:
    """A plain-text table grouped by section (stable, grep- and diff-friendly)."""
    rows = list(rows)
    name_w = max((len(r.name) for r in rows), default=10)
    value_w = max((len(_fmt(r.value)) for r in rows), default=8)
    unit_w = max((len(r.unit) for r in rows), default=4)
    lines: list[str] = []
    section = None
    for r in rows:
        if r.section != section:
            section = r.section
            lines.append("")
            lines.append(f"== {section} ==")
        target = ""
        if r.target:
            verdict = "" if r.meets is None else (" ok" if r.meets else " MISSED")
            target = f"  [target {r.target}:{verdict}]"
        note = f"  ({r.note})" if r.note else ""
        line = f"  {r.name:<{name_w}}  {_fmt(r.value):>{value_w}} {r.unit:<{unit_w}}{target}{note}"
        lines.append(line.rstrip())
    return "\n".join(lines).lstrip("\n")
