"""Nightly (``/nightly``): the nightly suite's reports: one row per entry with its verdict,
tonight's values against the baseline, and a sparkline of the entry's trend."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from dash import Dash, Input, Output, dcc, html

from dashboard.api import access, guarded
from dashboard.components import GRAPH_CONFIG, error_box, picker, state_badge
from dashboard.nightly import COLUMNS, entry_rows, trend

PAGE = {"path": "/nightly", "name": "Nightly", "title": "mlbench: nightly"}
HISTORY = 60  # nights shown in the trends


def layout(**_query: Any) -> html.Div:
    return html.Div(
        [
            html.H2("Nightly benchmarks"),
            html.P(
                "The suite run by the mlbench_nightly DAG, each entry against the median of "
                "its last nightlies (or pinned runs); the band is estimated from their spread.",
                className="muted",
            ),
            error_box("nightly-error"),
            picker("Night", dcc.Dropdown(id="nightly-date", clearable=False), narrow=True),
            html.Div(id="nightly-summary"),
            html.Div(id="nightly-table"),
            dcc.Store(id="nightly-reports"),
            dcc.Store(id="nightly-page", data=0),
        ]
    )


def sparkline(dates: list[str], values: list[float | None], key: str) -> dcc.Graph:
    fig = go.Figure(go.Scatter(x=dates, y=values, mode="lines+markers", line={"width": 1.5}))
    fig.update_layout(
        height=44,
        width=180,
        margin={"l": 2, "r": 2, "t": 2, "b": 2},
        xaxis={"visible": False},
        yaxis={"visible": False},
        template="plotly_white",
        showlegend=False,
    )
    return dcc.Graph(
        id={"type": "nightly-trend", "entry": key},
        figure=fig,
        config={**GRAPH_CONFIG, "staticPlot": True},
        className="sparkline",
    )


def table(report: dict[str, Any], reports: list[dict[str, Any]]) -> html.Table:
    head = ["entry", "verdict", *COLUMNS.values(), "trend (time to target)", "baseline"]
    body = []
    for row in entry_rows(report):
        dates, values = trend(reports, row["entry"])
        cells = [html.Td(row["entry"]), html.Td(state_badge(row["verdict"]))]
        cells += [
            html.Td(row[metric], className=f"status-{row[f'{metric}_status']}")
            for metric in COLUMNS
        ]
        cells += [html.Td(sparkline(dates, values, row["entry"])), html.Td(row["baseline"])]
        body.append(html.Tr(cells))
    return html.Table(
        [html.Thead(html.Tr([html.Th(h) for h in head])), html.Tbody(body)],
        className="table",
        id="nightly-results",
    )


def register(app: Dash) -> None:
    @app.callback(
        Output("nightly-error", "children"),
        Output("nightly-reports", "data"),
        Output("nightly-date", "options"),
        Output("nightly-date", "value"),
        Input("nightly-page", "data"),
    )
    @guarded(outputs=4, error_at=0)
    def load(_page: int) -> tuple:
        with access().client() as client:
            reports = client.get_nightly_reports(limit=HISTORY)
        options = [{"label": f"{r['date']}: {r['verdict']}", "value": r["date"]} for r in reports]
        return reports, options, reports[0]["date"] if reports else None

    @app.callback(
        Output("nightly-summary", "children"),
        Output("nightly-table", "children"),
        Input("nightly-date", "value"),
        Input("nightly-reports", "data"),
    )
    def show(night: str | None, reports: list | None) -> tuple:
        reports = reports or []
        chosen = next((r for r in reports if r["date"] == night), None)
        if chosen is None:
            empty = html.P(
                "No nightly report yet: the mlbench_nightly DAG runs the suite every night "
                "(MLBENCH_NIGHTLY_SCHEDULE); start one now with `mlbench nightly run`.",
                className="muted empty",
            )
            return empty, None
        summary = html.P(
            [
                f"Night {chosen['date']}: ",
                state_badge(chosen["verdict"]),
                f"  (DAG run {chosen.get('dag_run_id') or '-'})",
            ]
        )
        return summary, table(chosen["report"], reports)
