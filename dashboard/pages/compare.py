"""Compare (``/compare``): finished runs of one benchmark at different worker counts: time
to target, speedup and scaling efficiency against 1 worker, and the compute / communication
split per worker count."""

from __future__ import annotations

from collections import Counter
from typing import Any

from dash import Dash, Input, Output, State, dcc, html

from dashboard import figures
from dashboard.api import access, guarded, href
from dashboard.components import error_box, graph, section
from dashboard.series import comparable, scaling
from mlbench_core.text import show_date, show_seconds

PAGE = {"path": "/compare", "name": "Compare", "title": "mlbench: compare"}


def layout(**_query: Any) -> html.Div:
    return html.Div(
        [
            html.H2("Compare runs"),
            html.P(
                "Finished runs of one benchmark that reached their goal, at different worker "
                "counts. Runs with the same count are summarised by their median time.",
                className="muted",
            ),
            error_box("compare-error"),
            html.Div(
                [
                    html.Label("Benchmark", htmlFor="compare-benchmark"),
                    dcc.Dropdown(id="compare-benchmark", clearable=False),
                ],
                className="picker narrow",
            ),
            section("Runs", dcc.Checklist(id="compare-runs", className="run-list")),
            html.Div(id="compare-note", className="muted"),
            html.Div(
                [
                    graph("compare-time", 300),
                    graph("compare-speedup", 300),
                    graph("compare-efficiency", 300),
                    graph("compare-split", 300),
                ],
                className="grid two",
            ),
            html.Div(id="compare-table"),
            dcc.Store(id="compare-data"),
            dcc.Store(id="compare-page", data=0),
        ]
    )


def candidates(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Finished runs that can be compared, with what the page shows of them."""
    out = []
    for run in runs:
        found = comparable(run)
        if found is not None:
            workers, seconds, _ = found
            out.append(
                {
                    "id": run["id"],
                    "name": run["name"],
                    "benchmark": run.get("benchmark") or run.get("image_name") or "-",
                    "workers": workers,
                    "seconds": seconds,
                    "created_at": run.get("created_at"),
                    "state": run["state"],
                    "result": run["result"],
                }
            )
    return sorted(out, key=lambda r: (r["workers"], r["created_at"] or ""))


def _table(rows: list, base: int | None) -> html.Table:
    head = ["workers", "runs", "time to target", "speedup", "efficiency",
            "compute", "communication", "data loading"]  # fmt: skip
    body = [
        html.Tr(
            [
                html.Td(r.workers),
                html.Td(r.runs),
                html.Td(show_seconds(r.time_to_target_s)),
                html.Td(f"{r.speedup:.2f}x"),
                html.Td(f"{100 * r.efficiency:.0f} %"),
                *[
                    html.Td(show_seconds(r.split.get(k)))
                    for k in ("compute_s", "communication_s", "data_loading_s")
                ],
            ]
        )
        for r in rows
    ]
    note = [] if base in (None, 1) else [html.Caption(f"baseline: {base} workers")]
    return html.Table(
        [*note, html.Thead(html.Tr([html.Th(h) for h in head])), html.Tbody(body)],
        className="table",
        id="compare-results",
    )


def register(app: Dash) -> None:
    @app.callback(
        Output("compare-error", "children"),
        Output("compare-data", "data"),
        Output("compare-benchmark", "options"),
        Output("compare-benchmark", "value"),
        Input("compare-page", "data"),
    )
    @guarded(outputs=4, error_at=0)
    def load(_page: int) -> tuple:
        with access().client() as client:
            runs = candidates(client.get_runs())
        counts = Counter(r["benchmark"] for r in runs)
        options = [{"label": f"{b} ({n} runs)", "value": b} for b, n in sorted(counts.items())]
        default = counts.most_common(1)[0][0] if counts else None
        return runs, options, default

    @app.callback(
        Output("compare-runs", "options"),
        Output("compare-runs", "value"),
        Input("compare-benchmark", "value"),
        State("compare-data", "data"),
    )
    def pick(benchmark: str | None, runs: list | None) -> tuple:
        mine = [r for r in runs or [] if r["benchmark"] == benchmark]
        options = [
            {
                "label": html.Span(
                    [
                        dcc.Link(r["name"], href=href(f"/runs/{r['id']}")),
                        f"  {r['workers']} workers, {show_seconds(r['seconds'])} to target, "
                        f"{show_date(r['created_at'])}",
                    ]
                ),
                "value": r["id"],
            }
            for r in mine
        ]
        return options, [r["id"] for r in mine]

    @app.callback(
        Output("compare-note", "children"),
        Output("compare-time", "figure"),
        Output("compare-speedup", "figure"),
        Output("compare-efficiency", "figure"),
        Output("compare-split", "figure"),
        Output("compare-table", "children"),
        Input("compare-runs", "value"),
        State("compare-data", "data"),
    )
    def compare(chosen: list | None, runs: list | None) -> tuple:
        picked = [r for r in runs or [] if r["id"] in set(chosen or [])]
        rows, base = scaling(picked)
        if not rows:
            note = (
                "No finished runs to compare yet. Run one benchmark at 1, 2 and 4 workers "
                "(Runs, New run), and come back when they have reached their goal."
                if not runs
                else "Pick runs above."
            )
            blank = [
                figures.blank(t, "no runs picked")
                for t in ("Time to target", "Speedup", "Scaling efficiency", "Split")
            ]
            return (note, *blank, None)
        note = (
            ""
            if base == 1
            else f"No 1-worker run among these: speedup is against {base} workers, "
            f"taken to scale ideally (speedup {base} at {base} workers)."
        )
        return (
            note,
            figures.time_to_target(rows),
            figures.speedup(rows, base),
            figures.efficiency(rows),
            figures.split_by_workers(rows),
            _table(rows, base),
        )
