"""Charts as server-rendered SVG: no script, no library, nothing from elsewhere, and
nothing the CSP has to allow (colours come from classes in keyguard.css, not from
inline styles). Every chart also has its numbers as a table, for screen readers and
for anyone who wants the figures."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT = 720, 220
LEFT, BOTTOM, TOP = 48, 28, 12  # room for the y-axis labels, the x-axis labels, the top


@dataclass(frozen=True, slots=True)
class Bar:
    label: str  # shown under some bars and in the table
    ok: int
    refused: int


def _nice_max(value: int) -> int:
    """The axis's top: 1, 2 or 5 times a power of ten, at least ``value``."""
    if value <= 0:
        return 1
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def _tick(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def stacked_bars(bars: Sequence[Bar], *, title: str, ok_label: str, refused_label: str) -> Markup:
    """Requests over time: allowed (bottom) and refused (on top) per bucket."""
    top = _nice_max(max((b.ok + b.refused for b in bars), default=0))
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    slot = plot_w / max(len(bars), 1)
    width = max(slot * 0.8, 1.0)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}"'
        ' xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for fraction in (0, 0.5, 1):
        y = TOP + plot_h * (1 - fraction)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - 8}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(
            f'<text class="axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{_tick(top * fraction)}</text>"
        )
    every = max(1, len(bars) // 6)  # at most about seven labels under the axis
    for i, bar in enumerate(bars):
        x = LEFT + i * slot + (slot - width) / 2
        ok_h = plot_h * bar.ok / top
        refused_h = plot_h * bar.refused / top
        base = TOP + plot_h
        tip = escape(f"{bar.label}: {ok_label} {bar.ok:,}, {refused_label} {bar.refused:,}")
        if bar.ok:
            parts.append(
                f'<rect class="ok" x="{x:.1f}" y="{base - ok_h:.1f}" width="{width:.1f}"'
                f' height="{ok_h:.1f}"><title>{tip}</title></rect>'
            )
        if bar.refused:
            parts.append(
                f'<rect class="refused" x="{x:.1f}" y="{base - ok_h - refused_h:.1f}"'
                f' width="{width:.1f}" height="{refused_h:.1f}"><title>{tip}</title></rect>'
            )
        if i % every == 0:
            parts.append(
                f'<text class="axis" x="{x + width / 2:.1f}" y="{HEIGHT - 8}"'
                f' text-anchor="middle">{escape(bar.label)}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text inside was escaped above


def horizontal_bars(items: Sequence[tuple[str, int]], *, title: str) -> Markup:
    """Counts by name (refusals by code), longest first as given."""
    rows = max(len(items), 1)
    row_h = 26
    height = rows * row_h + 8
    label_w = 190
    top = max((n for _, n in items), default=0) or 1
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title)}"'
        ' xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for i, (name, n) in enumerate(items):
        y = 4 + i * row_h
        w = (WIDTH - label_w - 70) * n / top
        parts.append(
            f'<text class="axis" x="{label_w - 8}" y="{y + 17}" text-anchor="end">'
            f"{escape(name)}</text>"
            f'<rect class="refused" x="{label_w}" y="{y + 4}" width="{max(w, 1):.1f}" height="18"/>'
            f'<text class="axis" x="{label_w + w + 6:.1f}" y="{y + 17}">{n:,}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text inside was escaped above
