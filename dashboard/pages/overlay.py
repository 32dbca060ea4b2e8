"""Runs on one chart (``/overlay?runs=1,2,3``): a metric of the runs picked in Runs or
Compare against wall time, epochs or samples seen, repeated runs of one configuration as a
median with a band, what differs between the runs, and both as CSV
(:mod:`dashboard.overlay`)."""

from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, State, dcc, html

from dashboard import figures, overlay
from dashboard.api import access, guarded, href
from dashboard.components import error_box, facts, graph, picker, section
from dashboard.series import run_goal

AXES = list(overlay.AXES.items())
PAGE = {"path": "/overlay", "name": "Overlay", "title": "mlbench: runs on one chart"}


def layout(runs: str | None = None, metric: str | None = None, axis: str | None = None,
           group: str | None = None, **_query: Any) -> html.Div:  # fmt: skip
    chosen = {
        "runs": overlay.run_ids(runs),
        "metric": metric or None,
        "axis": axis if axis in overlay.AXES else "time",
        "group": group != "0",
    }
    return html.Div(
        [
            html.H2("Runs on one chart"),
            html.P(
                "Pick runs in Runs (their checkboxes) or in Compare. Runs of one configuration "
                "(repeated with other seeds) can be drawn as their median, with a band from "
                "the lowest to the highest of them.",
                className="muted",
            ),
            error_box("overlay-error"),
            html.P(id="overlay-gone", className="muted"),
            html.Div(
                [
                    picker(
                        "Metric",
                        dcc.Dropdown(id="overlay-metric", clearable=False, value=chosen["metric"]),
                        narrow=True,
                    ),
                    picker(
                        "Against",
                        dcc.RadioItems(
                            id="overlay-axis",
                            value=chosen["axis"],
                            inline=True,
                            options=[{"label": f" {t}", "value": a} for a, t in AXES],
                        ),
                    ),
                    dcc.Checklist(
                        id="overlay-group",
                        value=["yes"] if chosen["group"] else [],
                        options=[
                            {
                                "label": " median and band for runs of one configuration",
                                "value": "yes",
                            }
                        ],
                    ),
                ],  # fmt: skip
                className="toolbar",
            ),
            graph("overlay-chart", 420),
            html.Div(id="overlay-note", className="muted"),
            section(
                "What differs",
                html.Div(id="overlay-fixed"),
                html.Div(id="overlay-diff"),
                html.P(
                    [
                        html.A("table as CSV", id="overlay-table-csv", className="button"),
                        " ",
                        html.A("series as CSV", id="overlay-series-csv", className="button"),
                    ]
                ),
            ),
            dcc.Store(id="overlay-page", data=chosen),
            dcc.Store(id="overlay-runs"),
        ]
    )


def default_metric(runs: list[dict[str, Any]], names: list[str], benchmarks: list) -> str | None:
    """The first run's goal metric if the runs have it, else the training loss."""
    goal = run_goal(runs[0], benchmarks) if runs else None
    for wanted in (goal or {}).get("metric"), "train_loss":
        if wanted in names:
            return wanted
    return names[0] if names else None


def chart(runs: list[dict[str, Any]], metric: str, axis: str, group: bool) -> tuple:
    """(figure, note, curves drawn) of ``metric`` against ``axis``."""
    drawn = overlay.drawn(runs, metric, axis)
    by_id = {c.run_id: c for c in drawn}
    lines, bands = [], []
    for members in overlay.grouped(runs) if group else [overlay.Group({}, [r]) for r in runs]:
        member_curves = [by_id[r["id"]] for r in members.runs]
        xs, mids, lows, highs = overlay.band(member_curves)
        if len(members.runs) > 1 and xs:
            names = ", ".join(r["name"] for r in members.runs)
            bands.append((f"median of {len(members.runs)}: {names}", xs, mids, lows, highs))
        else:
            lines += [(c.name, c.xs, c.ys) for c in member_curves]
    empty = [c.name for c in drawn if not c.xs]
    note = f"No points of {metric} on this axis for: {', '.join(empty)}." if empty else ""
    figure = figures.overlay(metric, overlay.AXES[axis], lines, bands)
    return figure, note, drawn


def diff_view(columns: list[str], rows: list[dict[str, str]], fixed: dict[str, str]) -> tuple:
    table = html.Table(
        [
            html.Thead(html.Tr([html.Th(c) for c in columns])),
            html.Tbody([html.Tr([html.Td(row[c]) for c in columns]) for row in rows]),
        ],
        className="table",
        id="overlay-diff-table",
    )
    shared = facts(list(fixed.items())) if fixed else html.P("Nothing in common.")
    return html.Div([html.H4("The same in every run"), shared]), table


def register(app: Dash) -> None:
    @app.callback(
        Output("overlay-error", "children"),
        Output("overlay-runs", "data"),
        Output("overlay-metric", "options"),
        Output("overlay-metric", "value"),
        Output("overlay-gone", "children"),
        Input("overlay-page", "data"),
    )
    @guarded(outputs=5, error_at=0)
    def load(chosen: dict[str, Any]) -> tuple:
        runs, gone = overlay.fetch(chosen["runs"])
        names = overlay.series_names(runs)
        with access().client() as client:
            benchmarks = client.get_benchmarks()
        metric = chosen["metric"] if chosen["metric"] in names else None
        options = [{"label": n, "value": n} for n in names]
        missing = f"Run {', '.join(gone)}: deleted or never existed." if gone else None
        return runs, options, metric or default_metric(runs, names, benchmarks), missing

    @app.callback(
        Output("overlay-chart", "figure"),
        Output("overlay-note", "children"),
        Output("overlay-fixed", "children"),
        Output("overlay-diff", "children"),
        Output("overlay-table-csv", "href"),
        Output("overlay-series-csv", "href"),
        Input("overlay-metric", "value"),
        Input("overlay-axis", "value"),
        Input("overlay-group", "value"),
        State("overlay-runs", "data"),
    )
    def draw(metric: str | None, axis: str, group: list | None, runs: list | None) -> tuple:
        runs = runs or []
        if not runs or not metric:
            message = "Pick runs in Runs or Compare." if not runs else "These runs have no series."
            return figures.blank("Runs on one chart", message, height=420), "", None, None, "", ""
        figure, note, drawn = chart(runs, metric, axis, bool(group))
        fixed, table = diff_view(*overlay.differences(runs, metric, drawn))
        shown = overlay.query([r["id"] for r in runs], metric, axis, bool(group))
        return (figure, note, fixed, table, href(f"/download/overlay/table.csv?{shown}"),
                href(f"/download/overlay/series.csv?{shown}"))  # fmt: skip
