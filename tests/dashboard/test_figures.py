"""Figures built from plain lists, as Plotly JSON."""

from __future__ import annotations

import plotly.graph_objects as go
import pytest
from dash import no_update

from dashboard import figures
from dashboard.series import Scaling


def valid(figure: dict) -> go.Figure:
    """The figure as Plotly would take it (raises on anything Plotly does not know)."""
    return go.Figure(figure)


def test_extension_appends_only_parts_with_points():
    ext = figures.extension([(0, ["a"], [1.0]), (1, [], []), (2, ["b", "c"], [2.0, 3.0])])
    assert ext == [{"x": [["a"], ["b", "c"]], "y": [[1.0], [2.0, 3.0]]}, [0, 2]]
    assert figures.extension([(0, [], [])]) is no_update


def test_metrics_has_one_panel_per_metric_and_the_goal_line():
    fig = figures.metrics(
        ["train_loss", "val_accuracy"],
        {"train_loss": ([1, 2], [0.5, 0.4]), "val_accuracy": ([2], [90.0])},
        x_title="epoch",
        goal={"metric": "val_accuracy", "target": 95.0},
    )
    checked = valid(fig)
    assert [t.name for t in checked.data] == ["train_loss", "val_accuracy"]
    assert [t.yaxis for t in checked.data] == ["y", "y2"]
    lines = [s for s in checked.layout.shapes if s.y0 == 95.0 and s.y1 == 95.0]
    assert len(lines) == 1 and lines[0].yref == "y2"
    top, bottom = checked.layout.yaxis.domain, checked.layout.yaxis2.domain
    assert top[0] > bottom[1]  # stacked, the first on top


def test_metrics_without_the_goal_metric_has_no_goal_line():
    fig = valid(
        figures.metrics(["train_loss"], {}, x_title="t", goal={"metric": "val_top1", "target": 80})
    )
    assert not fig.layout.shapes and len(fig.data) == 1


def test_long_lines_have_no_markers():
    short = figures.lines("CPU", "cores", [("a", [1, 2], [1.0, 2.0])])
    long = figures.lines("CPU", "cores", [("a", list(range(500)), [1.0] * 500)])
    assert short["data"][0]["mode"] == "lines+markers" and long["data"][0]["mode"] == "lines"
    valid(short)


def test_a_chart_without_points_says_so_but_keeps_its_lines():
    fig = figures.lines("CPU", "cores", [("a", [], []), ("b", [], [])])
    assert len(fig["data"]) == 2
    assert fig["layout"]["annotations"][0]["text"] == "no samples yet"
    valid(fig)


def test_split_stacks_one_bar_trace_per_phase():
    fig = valid(
        figures.split(
            ["time_compute", "time_communication"],
            {"time_compute": ([1, 2], [3.0, 4.0])},
            title="s",
        )
    )
    assert fig.layout.barmode == "stack"
    assert [t.name for t in fig.data] == ["compute", "communication"]


def test_panels_one_per_series():
    fig = valid(figures.panels([("CPU", "cores", [1], [1.0]), ("x", "", [1], [2.0])], "Series"))
    assert [t.yaxis for t in fig.data] == ["y", "y2"]
    assert [a.text for a in fig.layout.annotations] == ["CPU (cores)", "x"]


def test_scaling_figures():
    rows = [
        Scaling(1, 1, 100.0, 1.0, 1.0, {"compute_s": 90.0}),
        Scaling(2, 1, 60.0, 100 / 60, 100 / 120, {"compute_s": 45.0, "communication_s": 12.0}),
    ]
    speedup = valid(figures.speedup({"": rows}, 1))
    assert list(speedup.data[1].y) == [1.0, 100 / 60]
    assert list(speedup.data[0].y) == [1, 2]  # ideal
    efficiency = valid(figures.efficiency({"": rows}))
    assert list(efficiency.data[0].y) == pytest.approx([100.0, 100 * 100 / 120])
    split = valid(figures.split_by_workers(rows))
    assert list(split.data[1].y) == [0.0, 12.0]
    assert valid(figures.time_to_target({"": rows})).layout.title.text == "Time to target"
    two = valid(figures.speedup({"cpus 1": rows, "cpus 2": rows[:1]}, 1))
    assert [t.name for t in two.data] == ["ideal", "cpus 1: speedup", "cpus 2: speedup"]


def test_blank_says_why():
    fig = valid(figures.blank("CPU", "no samples yet"))
    assert fig.layout.annotations[0].text == "no samples yet"
