"""The SVG charts: figures drawn to scale, labels escaped, nothing the CSP would block."""

from __future__ import annotations

import re

from keyguard.dashboard.charts import Bar, horizontal_bars, stacked_bars


def test_bars_are_to_scale_and_the_axis_is_labelled_truly() -> None:
    svg = stacked_bars(
        [Bar("a", 3, 1), Bar("b", 0, 0), Bar("c", 1, 0)],
        title="Requests",
        ok_label="ok",
        refused_label="refused",
    )
    assert re.findall(r'text-anchor="end">([^<]+)<', svg) == ["0", "2.5", "5"]
    heights = [float(h) for h in re.findall(r'height="([\d.]+)"', svg)]
    ok_three, refused_one, ok_one = heights
    assert abs(ok_three - 3 * ok_one) < 0.2
    assert abs(refused_one - ok_one) < 0.2
    assert 'role="img"' in svg
    assert "<title>Requests</title>" in svg


def test_labels_are_escaped_and_no_inline_style_or_script() -> None:
    hostile = '<script>alert(1)</script>"'
    svg = horizontal_bars([(hostile, 2), ("ip_not_allowed", 1)], title=hostile)
    svg += stacked_bars([Bar(hostile, 1, 1)], title=hostile, ok_label=hostile, refused_label="r")
    assert "<script" not in svg
    assert "&lt;script&gt;" in svg
    assert "style=" not in svg
    assert "javascript:" not in svg


def test_an_empty_window_draws_an_axis_and_no_bar() -> None:
    svg = stacked_bars([], title="t", ok_label="o", refused_label="r")
    assert "<rect" not in svg
    assert svg.endswith("</svg>")
