"""Compare (``/compare``): finished runs of one configuration (:mod:`mlbench_core.
configuration`) at different worker counts — time to target (throughput for synthetic data),
speedup and scaling efficiency against 1 worker, the compute / communication split — never
pooling runs whose configurations differ. The user picks which keys vary (workers by
default); the others are fixed and shown; runs that differ in a fixed key are listed apart
with what differs."""

from __future__ import annotations

from collections import Counter
from typing import Any
from urllib.parse import urlencode

from dash import Dash, Input, Output, State, dcc, html

from dashboard import figures
from dashboard.api import access, guarded, href
from dashboard.components import error_box, facts, graph, picker, section
from dashboard.series import comparable, scaling
from mlbench_core import configuration
from mlbench_core.configuration import KEYS, LABELS
from mlbench_core.text import show_date, show_number

PAGE = {"path": "/compare", "name": "Compare", "title": "mlbench: compare"}
VARY_DEFAULT = ["workers"]


def _query(query: dict[str, Any]) -> dict[str, Any]:
    """The page's choices from its URL: ``?benchmark=B&config=N&vary=workers,cpus``."""
    vary = query.get("vary")
    return {
        "benchmark": query.get("benchmark") or None,
        "config": str(query.get("config") or "0"),
        "vary": [v for v in str(vary).split(",") if v] if vary is not None else VARY_DEFAULT,
    }


def _url(benchmark: str | None, config: int, vary: list[str]) -> str:
    query = {"benchmark": benchmark or "", "config": config, "vary": ",".join(vary)}
    return href(f"/compare?{urlencode(query)}")


def layout(**query: Any) -> html.Div:
    chosen = _query(query)
    return html.Div(
        [
            html.H2("Compare runs"),
            html.P(
                "Finished runs of one configuration at different worker counts. Runs that "
                "differ in anything but what you let vary are never pooled; repeated runs "
                "(other seeds) are summarised by their median.",
                className="muted",
            ),
            error_box("compare-error"),
            html.Div(
                [
                    picker(
                        "Benchmark",
                        dcc.Dropdown(id="compare-benchmark", clearable=False),
                        narrow=True,
                    ),
                    picker("Configuration", html.Div(id="compare-config", className="config-list")),
                ],
                className="grid two",
            ),
            picker(
                "Let vary",
                dcc.Checklist(
                    id="compare-vary",
                    value=chosen["vary"],
                    inline=True,
                    options=[
                        {"label": f" {k.label}", "value": k.name}
                        for k in KEYS
                        if k.name != "benchmark"
                    ],
                ),
            ),
            section("Fixed in this configuration", html.Div(id="compare-fixed")),
            section(
                "Runs",
                dcc.Checklist(id="compare-runs", className="run-list"),
                dcc.Link(
                    "These runs on one chart",
                    id="compare-overlay",
                    href="",
                    className="button disabled",
                ),
            ),  # fmt: skip
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
            section("Runs of this benchmark in other configurations", html.Div(id="compare-apart")),
            dcc.Store(id="compare-data"),
            dcc.Store(id="compare-page", data=chosen),
            dcc.Store(id="compare-choice"),
        ]
    )


def candidates(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Finished runs that can be compared, with their configuration and what the page
    needs of them (the fields :func:`~dashboard.series.scaling` reads)."""
    out = []
    for run in runs:
        found = comparable(run)
        if found is None:
            continue
        workers, value, measure, _ = found
        out.append(
            {
                "id": run["id"],
                "name": run["name"],
                "benchmark": configuration.configuration(run)["benchmark"],
                "config": configuration.configuration(run),
                "workers": workers,
                "value": value,
                "measure": measure,
                "created_at": run.get("created_at"),
                "state": run["state"],
                "num_workers": run.get("num_workers"),
                "synthetic": run.get("synthetic"),
                "result": run["result"],
            }
        )
    return sorted(out, key=lambda r: (r["workers"], r["created_at"] or ""))


def _groups(mine: list[dict[str, Any]], vary: list[str]) -> list[configuration.Group]:
    return configuration.groups(mine, vary, config_of=lambda r: r["config"])


def _value(run: dict[str, Any]) -> str:
    if run["measure"] == "throughput":
        return f"{show_number(round(run['value'], 1))} samples/s"
    return f"{show_number(round(run['value'], 1))} s to target"


def _table(series: dict[str, list], base: int | None) -> html.Table:
    head = ["series", "workers", "runs", "time to target / throughput", "speedup",
            "efficiency", "compute", "communication", "data loading"]  # fmt: skip
    body = [
        html.Tr(
            [
                html.Td(name or "-"),
                html.Td(r.workers),
                html.Td(r.runs),
                html.Td(show_number(round(r.value, 2))),
                html.Td(f"{r.speedup:.2f}x"),
                html.Td(f"{100 * r.efficiency:.0f} %"),
                *[
                    html.Td(f"{r.split[k]:.1f} s" if k in r.split else "-")
                    for k in ("compute_s", "communication_s", "data_loading_s")
                ],
            ]
        )
        for name, rows in series.items()
        for r in rows
    ]
    note = [] if base in (None, 1) else [html.Caption(f"baseline: {base} workers")]
    return html.Table(
        [*note, html.Thead(html.Tr([html.Th(h) for h in head])), html.Tbody(body)],
        className="table",
        id="compare-results",
    )


def _apart(others: list[dict[str, Any]], fixed: dict[str, str]) -> Any:
    if not others:
        return html.P("None: every finished run of this benchmark is above.", className="muted")
    rows = []
    for run in others:
        differs = [
            f"{LABELS[k]} {run['config'][k]} (here {v})"
            for k, v in fixed.items()
            if run["config"].get(k) != v
        ]
        rows.append(
            html.Tr(
                [
                    html.Td(dcc.Link(run["name"], href=href(f"/runs/{run['id']}"))),
                    html.Td(run["workers"]),
                    html.Td(_value(run)),
                    html.Td("; ".join(differs)),
                ]
            )
        )
    head = html.Thead(html.Tr([html.Th(h) for h in ("run", "workers", "value", "differs in")]))
    return html.Table([head, html.Tbody(rows)], className="table fields", id="compare-apart-table")


def series_of(picked: list[dict[str, Any]], vary: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The picked runs split by the varying keys other than workers (one line each)."""
    others = [k for k in vary if k != "workers"]
    out: dict[str, list[dict[str, Any]]] = {}
    for run in picked:
        name = configuration.label(run["config"], others) if others else ""
        out.setdefault(name, []).append(run)
    return out


def register(app: Dash) -> None:
    @app.callback(
        Output("compare-error", "children"),
        Output("compare-data", "data"),
        Output("compare-benchmark", "options"),
        Output("compare-benchmark", "value"),
        Input("compare-page", "data"),
    )
    @guarded(outputs=4, error_at=0)
    def load(chosen: dict[str, Any]) -> tuple:
        with access().client() as client:
            runs = candidates(client.get_runs())
        counts = Counter(r["benchmark"] for r in runs)
        options = [{"label": f"{b} ({n} runs)", "value": b} for b, n in sorted(counts.items())]
        default = counts.most_common(1)[0][0] if counts else None
        asked = chosen.get("benchmark") if isinstance(chosen, dict) else None
        return runs, options, asked if asked in counts else default

    @app.callback(
        Output("compare-config", "children"),
        Output("compare-choice", "data"),
        Input("compare-benchmark", "value"),
        Input("compare-vary", "value"),
        State("compare-data", "data"),
        State("compare-page", "data"),
    )
    def configs(benchmark: str | None, vary: list | None, runs: list | None,
                asked: dict[str, Any] | None) -> tuple:  # fmt: skip
        """The configurations as links (the URL says which one is shown)."""
        vary = list(vary or [])
        mine = [r for r in runs or [] if r["benchmark"] == benchmark]
        groups = _groups(mine, vary)
        same = asked and asked.get("vary") == vary and asked.get("benchmark") in (None, benchmark)
        index = int(asked["config"]) if same and str(asked.get("config")).isdigit() else 0
        index = index if 0 <= index < len(groups) else 0
        links = [
            dcc.Link(
                f"{configuration.describe(g, groups)} ({len(g.runs)} runs)",
                href=_url(benchmark, i, vary),
                className="config current" if i == index else "config",
            )
            for i, g in enumerate(groups)
        ]
        return links, (str(index) if groups else None)

    @app.callback(
        Output("compare-fixed", "children"),
        Output("compare-runs", "options"),
        Output("compare-runs", "value"),
        Output("compare-apart", "children"),
        Input("compare-choice", "data"),
        State("compare-benchmark", "value"),
        State("compare-vary", "value"),
        State("compare-data", "data"),
    )
    def pick(choice: str | None, benchmark: str | None, vary: list | None, runs: list | None):
        mine = [r for r in runs or [] if r["benchmark"] == benchmark]
        groups = _groups(mine, list(vary or []))
        index = int(choice) if choice is not None and str(choice).isdigit() else -1
        if not 0 <= index < len(groups):
            return html.P("No finished runs.", className="muted"), [], [], None
        group = groups[index]
        chosen = {r["id"] for r in group.runs}
        options = [
            {
                "label": html.Span(
                    [
                        dcc.Link(r["name"], href=href(f"/runs/{r['id']}")),
                        f"  {r['workers']} workers, {_value(r)}, {show_date(r['created_at'])}",
                    ]
                ),
                "value": r["id"],
            }
            for r in group.runs
        ]
        fixed = facts([(LABELS[k], v) for k, v in group.fixed.items()])
        others = [r for r in mine if r["id"] not in chosen]
        return fixed, options, [r["id"] for r in group.runs], _apart(others, group.fixed)

    @app.callback(
        Output("compare-overlay", "href"),
        Output("compare-overlay", "className"),
        Input("compare-runs", "value"),
    )
    def overlay_link(chosen: list | None) -> tuple[str, str]:
        if not chosen:
            return "", "button disabled"
        return href(f"/overlay?runs={','.join(map(str, chosen))}"), "button"

    @app.callback(
        Output("compare-note", "children"),
        Output("compare-time", "figure"),
        Output("compare-speedup", "figure"),
        Output("compare-efficiency", "figure"),
        Output("compare-split", "figure"),
        Output("compare-table", "children"),
        Input("compare-runs", "value"),
        State("compare-vary", "value"),
        State("compare-data", "data"),
    )
    def compare(chosen: list | None, vary: list | None, runs: list | None) -> tuple:
        picked = [r for r in runs or [] if r["id"] in set(chosen or [])]
        series, bases = {}, set()
        for name, members in series_of(picked, list(vary or [])).items():
            rows, base = scaling(members)
            if rows:
                series[name] = rows
                bases.add(base)
        if not series:
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
        base = min(bases)
        note = (
            ""
            if bases == {1}
            else f"No 1-worker run in some series: speedup is against their smallest count "
            f"(here {base} workers), taken to scale ideally."
        )
        first = next(iter(series.values()))
        return (
            note,
            figures.time_to_target(series),
            figures.speedup(series, base),
            figures.efficiency(series),
            figures.split_by_workers(first),
            _table(series, base),
        )
