"""Plotly figures of the dashboard, built from plain lists (see :mod:`dashboard.series`).

Figures are plain dicts in Plotly's JSON form: ``plotly.graph_objects`` validates every point
of every trace, which took most of a callback's time for 1,000-point series.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dashboard.series import MEASURES, Scaling, phase_label

Figure = dict[str, Any]
XY = tuple[Sequence[Any], Sequence[float]]

COLORS = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777")
SPLIT_COLORS = {
    "time_compute": "#2563eb",
    "time_communication": "#dc2626",
    "time_data_loading": "#16a34a",
    "compute_s": "#2563eb",
    "communication_s": "#dc2626",
    "data_loading_s": "#16a34a",
}
MARKERS_UP_TO = 200  # points of a line drawn with a marker on each (more: a plain line)
GRID = "#eef0f3"
_AXIS = {"gridcolor": GRID, "zerolinecolor": "#d1d5db", "linecolor": "#d1d5db", "automargin": True}


def _layout(title: str, *, height: int = 260, uirevision: str = "", **extra: Any) -> dict:
    return {
        "title": {"text": title, "x": 0.01, "font": {"size": 14}},
        "height": height,
        "margin": {"l": 50, "r": 16, "t": 36, "b": 36},
        "legend": {"orientation": "h", "y": -0.25},
        "uirevision": uirevision or title,  # keep zoom and hidden traces across updates
        "hovermode": "x unified",
        "paper_bgcolor": "#fff",
        "plot_bgcolor": "#fff",
        "font": {"family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"},
        **extra,
    }


def _axis(**settings: Any) -> dict:
    return {**_AXIS, **settings}


def _line(name: str, xs: Sequence[Any], ys: Sequence[float], color: str, **extra: Any) -> dict:
    trace = {
        "type": "scatter",
        "name": name,
        "x": list(xs),
        "y": list(ys),
        "mode": "lines+markers" if len(xs) <= MARKERS_UP_TO else "lines",
        "marker": {"size": 4, "color": color},
        "line": {"color": color, "width": 1.5},
    }
    trace.update(extra)
    return trace


def _note(text: str) -> dict:
    return {
        "text": text, "showarrow": False, "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5,
        "font": {"color": "#6b7280"},
    }  # fmt: skip


def blank(title: str, message: str, *, height: int = 260) -> Figure:
    """An empty chart that says why it is empty."""
    layout = _layout(title, height=height, annotations=[_note(message)])
    layout["xaxis"] = {"visible": False}
    layout["yaxis"] = {"visible": False}
    return {"data": [], "layout": layout}


def lines(
    title: str,
    unit: str,
    traces: Sequence[tuple[str, Sequence[Any], Sequence[float]]],
    *,
    height: int = 260,
    empty: str = "no samples yet",
) -> Figure:
    """One line per ``(label, xs, ys)``, the y axis titled with ``unit``; ``empty`` is
    written across a chart without any point (its lines are there, to be extended)."""
    data = [
        _line(label, xs, ys, COLORS[i % len(COLORS)]) for i, (label, xs, ys) in enumerate(traces)
    ]
    layout = _layout(
        f"{title} ({unit})" if unit else title,
        height=height,
        xaxis=_axis(),
        yaxis=_axis(title={"text": unit}, rangemode="tozero"),
    )
    if not any(len(xs) for _, xs, _ in traces):
        layout["annotations"] = [_note(empty)]
    return {"data": data, "layout": layout}


def _rows(count: int, gap: float) -> list[tuple[float, float]]:
    """Vertical domains of ``count`` stacked panels, top first."""
    size = (1 - gap * (count - 1)) / count
    tops = [1 - i * (size + gap) for i in range(count)]
    return [(max(0.0, round(top - size, 6)), min(1.0, round(top, 6))) for top in tops]


def _stacked(
    panels: Sequence[tuple[str, str]], title: str, height: int, x_title: str, uirevision: str
) -> dict:
    """Layout of panels sharing one x axis: ``(y title, panel title)`` per panel, top first."""
    count = max(len(panels), 1)
    domains = _rows(count, 0.08 if count > 1 else 0.0)
    layout = _layout(title, height=height, uirevision=uirevision, showlegend=False)
    bottom = f"y{count}" if count > 1 else "y"
    layout["xaxis"] = _axis(anchor=bottom, title={"text": x_title})
    annotations = []
    for i, (y_title, panel_title) in enumerate(panels):
        name = "yaxis" if i == 0 else f"yaxis{i + 1}"
        layout[name] = _axis(domain=list(domains[i]), title={"text": y_title})
        if panel_title:
            annotations.append(
                {
                    "text": panel_title, "showarrow": False, "xref": "paper", "yref": "paper",
                    "x": 0.5, "y": domains[i][1], "yanchor": "bottom", "font": {"size": 12},
                }
            )  # fmt: skip
    if annotations:
        layout["annotations"] = annotations
    return layout


def _yref(i: int) -> str:
    return "y" if i == 0 else f"y{i + 1}"


def metrics(
    names: Sequence[str],
    data: Mapping[str, XY],
    *,
    x_title: str,
    goal: Mapping[str, Any] | None = None,
    title: str = "",
) -> Figure:
    """One panel per metric (shared x axis), trace ``i`` = ``names[i]``; the goal, when it is
    one of them, as a dashed horizontal line."""
    uirevision = f"{title}:{','.join(names)}"
    layout = _stacked(
        [(n, "") for n in names], title, max(240, 190 * len(names)), x_title, uirevision
    )
    traces = []
    for i, name in enumerate(names):
        xs, ys = data.get(name, ([], []))
        traces.append(_line(name, xs, ys, COLORS[i % len(COLORS)], yaxis=_yref(i)))
        if goal and goal.get("metric") == name and goal.get("target") is not None:
            target = float(goal["target"])
            yref = _yref(i)
            layout.setdefault("shapes", []).append(
                {
                    "type": "line", "xref": "x domain", "x0": 0, "x1": 1, "yref": yref,
                    "y0": target, "y1": target, "line": {"dash": "dash", "color": "#111827"},
                }
            )  # fmt: skip
            layout.setdefault("annotations", []).append(
                {
                    "text": f"goal {target:g}", "showarrow": False, "xref": "x domain", "x": 0,
                    "xanchor": "left", "yref": yref, "y": target, "yanchor": "bottom",
                }
            )  # fmt: skip
    return {"data": traces, "layout": layout}


def panels(rows: Sequence[tuple[str, str, Sequence[Any], Sequence[float]]], title: str) -> Figure:
    """One panel per ``(title, unit, xs, ys)`` (shared time axis); trace ``i`` = row ``i``."""
    names = [f"{t} ({u})" if u else t for t, u, _, _ in rows]
    layout = _stacked(
        [(u, names[i]) for i, (_, u, _, _) in enumerate(rows)],
        title,
        max(260, 200 * len(rows)),
        "",
        f"{title}:{','.join(names)}",
    )
    for i in range(len(rows)):
        layout["yaxis" if i == 0 else f"yaxis{i + 1}"]["rangemode"] = "tozero"
    traces = [
        _line(names[i], xs, ys, COLORS[i % len(COLORS)], yaxis=_yref(i))
        for i, (_, _, xs, ys) in enumerate(rows)
    ]
    return {"data": traces, "layout": layout}


def split(order: Sequence[str], data: Mapping[str, XY], *, title: str) -> Figure:
    """Seconds per epoch in each phase, stacked; trace ``i`` = ``order[i]``."""
    traces = []
    for i, name in enumerate(order):
        xs, ys = data.get(name, ([], []))
        color = SPLIT_COLORS.get(name, COLORS[i % len(COLORS)])
        traces.append(
            {"type": "bar", "name": phase_label(name), "x": list(xs), "y": list(ys),
             "marker": {"color": color}}
        )  # fmt: skip
    layout = _layout(
        title,
        height=300,
        uirevision=f"{title}:{','.join(order)}",
        barmode="stack",
        bargap=0.1,
        xaxis=_axis(title={"text": "epoch"}),
        yaxis=_axis(title={"text": "seconds"}),
    )
    return {"data": traces, "layout": layout}


def extension(parts: Sequence[tuple[int, Sequence[Any], Sequence[float]]]) -> Any:
    """``dcc.Graph.extendData`` appending ``(trace index, xs, ys)`` parts (empty ones left
    out); ``dash.no_update`` when there is nothing to append."""
    from dash import no_update

    kept = [(i, list(xs), list(ys)) for i, xs, ys in parts if len(xs)]
    if not kept:
        return no_update
    update = {"x": [xs for _, xs, _ in kept], "y": [ys for _, _, ys in kept]}
    return [update, [i for i, _, _ in kept]]


# -- comparing runs -------------------------------------------------------------------------

_WORKERS_AXIS = _axis(title={"text": "workers"}, dtick=1)


Lines = Mapping[str, Sequence[Scaling]]  # series name ("" when one) -> rows


def _named(name: str, what: str) -> str:
    return f"{name}: {what}" if name else what


def speedup(series: Lines, base_workers: int | None) -> Figure:
    """Speedup against the baseline per series, with ideal (linear) speedup for reference."""
    workers = sorted({r.workers for rows in series.values() for r in rows})
    base = "1 worker" if base_workers in (None, 1) else f"{base_workers} workers (taken as ideal)"
    data = [
        {"type": "scatter", "x": workers, "y": workers, "name": "ideal", "mode": "lines",
         "line": {"dash": "dot", "color": "#9ca3af"}},
    ]  # fmt: skip
    for i, (name, rows) in enumerate(series.items()):
        data.append(
            {"type": "scatter", "x": [r.workers for r in rows], "y": [r.speedup for r in rows],
             "name": _named(name, "speedup"), "mode": "lines+markers",
             "line": {"color": COLORS[i % len(COLORS)]}, "marker": {"size": 9},
             "text": [f"{r.runs} run(s)" for r in rows]}
        )  # fmt: skip
    layout = _layout(
        "Speedup",
        height=300,
        xaxis=_WORKERS_AXIS,
        yaxis=_axis(title={"text": f"speedup vs {base}"}, rangemode="tozero"),
    )
    return {"data": data, "layout": layout}


def efficiency(series: Lines) -> Figure:
    data = [
        {"type": "scatter", "x": [r.workers for r in rows],
         "y": [100 * r.efficiency for r in rows], "mode": "lines+markers",
         "marker": {"size": 9}, "line": {"color": COLORS[(i + 2) % len(COLORS)]},
         "name": _named(name, "efficiency")}
        for i, (name, rows) in enumerate(series.items())
    ]  # fmt: skip
    layout = _layout(
        "Scaling efficiency",
        height=300,
        xaxis=_WORKERS_AXIS,
        yaxis=_axis(title={"text": "scaling efficiency (%)"}, rangemode="tozero"),
        shapes=[
            {"type": "line", "xref": "x domain", "x0": 0, "x1": 1, "y0": 100, "y1": 100,
             "line": {"dash": "dot", "color": "#9ca3af"}}
        ],
    )  # fmt: skip
    return {"data": data, "layout": layout}


def time_to_target(series: Lines) -> Figure:
    """The compared value per worker count (grouped bars per series): time to target, or
    (synthetic data) throughput."""
    first = next((rows for rows in series.values() if rows), [])
    measure = first[0].measure if first else "time_to_target_s"
    label = MEASURES[measure][0]
    unit = " s" if measure == "time_to_target_s" else " samples/s"
    data = [
        {"type": "bar", "x": [str(r.workers) for r in rows], "y": [r.value for r in rows],
         "marker": {"color": COLORS[i % len(COLORS)]},
         "text": [f"{r.value:.1f}{unit}" for r in rows], "name": _named(name, label)}
        for i, (name, rows) in enumerate(series.items())
    ]  # fmt: skip
    layout = _layout(
        label[0].upper() + label[1:].split(" (")[0],
        height=300,
        barmode="group",
        xaxis=_axis(title={"text": "workers"}, type="category"),
        yaxis=_axis(title={"text": f"{label}, median"}),
    )
    return {"data": data, "layout": layout}


def split_by_workers(rows: Sequence[Scaling]) -> Figure:
    """Mean seconds of compute / communication / data loading (rank 0) per worker count."""
    data = [
        {"type": "bar", "x": [str(r.workers) for r in rows],
         "y": [r.split.get(key, 0.0) for r in rows],
         "name": key.removesuffix("_s").replace("_", " "),
         "marker": {"color": SPLIT_COLORS[key]}}
        for key in ("compute_s", "communication_s", "data_loading_s")
    ]  # fmt: skip
    layout = _layout(
        "Compute / communication split",
        height=300,
        barmode="stack",
        xaxis=_axis(title={"text": "workers"}, type="category"),
        yaxis=_axis(title={"text": "seconds"}),
    )
    return {"data": data, "layout": layout}


# -- the all-reduce report ------------------------------------------------------------------


def allreduce(shown: Any) -> Figure:
    """Bus bandwidth (Gbit/s) and p50 latency (µs) against message size (bytes, log axes),
    one line per data type, the p10-p90 latency spread as error bars, and the cap as a dashed
    line on the bandwidth panel. ``shown``: an :class:`~mlbench_core.benchmarks.
    allreduce_report.Report`."""
    layout = _stacked(
        [("busbw (Gbit/s)", "bus bandwidth"), ("p50 latency (µs)", "latency")],
        "All-reduce: message size against bandwidth and latency",
        520,
        "message size (bytes)",
        "allreduce",
    )
    layout["showlegend"] = True
    layout["hovermode"] = "closest"
    layout["xaxis"]["type"] = "log"
    layout["yaxis2"]["type"] = "log"
    traces = []
    for i, dtype in enumerate(shown.dtypes):
        rows = [r for r in shown.rows if r["dtype"] == dtype and r["latency_p50_us"] is not None]
        color = COLORS[i % len(COLORS)]
        sizes = [r["bytes"] for r in rows]
        traces.append(
            _line(dtype, sizes, [r["busbw_gbit_s"] for r in rows], color, yaxis="y",
                  legendgroup=dtype)
        )  # fmt: skip
        traces.append(
            _line(
                f"{dtype} latency", sizes, [r["latency_p50_us"] for r in rows], color,
                yaxis="y2", legendgroup=dtype, showlegend=False,
                error_y={
                    "type": "data", "symmetric": False, "color": color, "thickness": 1,
                    "array": [r["latency_p90_us"] - r["latency_p50_us"] for r in rows],
                    "arrayminus": [r["latency_p50_us"] - r["latency_p10_us"] for r in rows],
                },
            )
        )  # fmt: skip
    if shown.cap_gbit_s is not None:
        cap = shown.cap_gbit_s
        layout["shapes"] = [
            {"type": "line", "xref": "x domain", "x0": 0, "x1": 1, "yref": "y", "y0": cap,
             "y1": cap, "line": {"dash": "dash", "color": "#111827"}, "name": "cap"}
        ]  # fmt: skip
        layout.setdefault("annotations", []).append(
            {"text": f"cap {cap:g} Gbit/s", "showarrow": False, "xref": "x domain", "x": 0,
             "xanchor": "left", "yref": "y", "y": cap, "yanchor": "bottom"}
        )  # fmt: skip
    return {"data": traces, "layout": layout}


def _fill(color: str) -> str:
    red, green, blue = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},0.18)"


def overlay(
    metric: str,
    axis: str,
    lines: Sequence[tuple[str, Sequence[float], Sequence[float]]],
    bands: Sequence[tuple[str, Sequence[float], Sequence[float], Sequence[float], Sequence[float]]],
) -> Figure:
    """Several runs' ``metric`` against ``axis``: a line per run of ``lines``
    ``(name, xs, ys)``, and per group of ``bands`` ``(name, xs, median, low, high)`` its
    median line over a shaded band from the lowest to the highest run."""
    data: list[dict] = []
    for i, (name, xs, mids, lows, highs) in enumerate(bands):
        color = COLORS[i % len(COLORS)]
        group = f"band-{i}"
        data.append({"type": "scatter", "x": list(xs), "y": list(highs), "mode": "lines",
                     "line": {"width": 0}, "showlegend": False, "legendgroup": group,
                     "name": f"{name}: highest", "hoverinfo": "skip"})  # fmt: skip
        data.append({"type": "scatter", "x": list(xs), "y": list(lows), "mode": "lines",
                     "line": {"width": 0}, "fill": "tonexty", "fillcolor": _fill(color),
                     "showlegend": False, "legendgroup": group, "name": f"{name}: lowest",
                     "hoverinfo": "skip"})  # fmt: skip
        data.append(_line(name, xs, mids, color, mode="lines", legendgroup=group))
    for j, (name, xs, ys) in enumerate(lines, start=len(bands)):
        data.append(_line(name, xs, ys, COLORS[j % len(COLORS)]))
    layout = _layout(metric, height=420, uirevision=f"overlay-{metric}-{axis}",
                     xaxis=_axis(title={"text": axis}), yaxis=_axis(title={"text": metric}),
                     hovermode="closest")  # fmt: skip
    layout["legend"] = {"orientation": "h", "y": -0.2}
    if not any(len(t["x"]) for t in data):
        layout["annotations"] = [_note("no points on this axis")]
    return {"data": data, "layout": layout}
