"""Workers (``/``): every worker pod, and live charts of their CPU, memory and network."""

from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, State, dcc, html, no_update

from dashboard import figures, resource_feed
from dashboard.api import access, guarded, href
from dashboard.components import error_box, graph, link_cell, poller
from dashboard.grid import column, grid
from dashboard.live import Owner, newest_per_pod
from dashboard.series import RESOURCES
from mlbench_core.text import show_date

PAGE = {"path": "/", "name": "Workers", "title": "mlbench: workers"}
SUMMARIZE = 500  # points per series in the first load
RELOAD_AFTER = 5_000  # appended points after which the charts are loaded afresh

COLUMNS = [
    column("worker", "worker", link=True, minWidth=180),
    column("phase", "phase"),
    column("run", "run", link=True),
    column("rank", "rank", kind="number"),
    column("node", "node"),
    column("ip", "IP"),
    column("updated", "updated (UTC)", minWidth=170),
]


def layout(**_query: Any) -> html.Div:
    return html.Div(
        [
            html.H2("Workers"),
            error_box("workers-error"),
            html.Div(id="workers-empty"),
            html.Div(
                [
                    grid("workers-table", COLUMNS, row_id="id"),
                    html.Div([graph(f"workers-{r.key}") for r in RESOURCES], className="grid two"),
                ],
                id="workers-content",
            ),
            dcc.Store(id="workers-feed"),
            poller("workers-interval"),
        ]
    )


def empty_state() -> html.Div:
    return html.Div(
        [
            html.H3("No workers yet"),
            html.P(
                [
                    "Workers appear here, with their CPU, memory and network, as soon as a run "
                    "starts them. Start one from the ",
                    dcc.Link("Runs page", href=href("/runs")),
                    " (New run), or from a shell:",
                ]
            ),
            html.Pre("mlbench run my-first-run --benchmark digits --workers 2 --follow"),
        ],
        className="empty card",
        id="workers-empty-state",
    )


def pod_rows(pods: list[dict[str, Any]], run_names: dict[int, str]) -> list[dict[str, Any]]:
    rows = []
    for pod in pods:
        run_id = pod.get("run_id")
        run = run_names.get(run_id, str(run_id)) if run_id is not None else "-"
        rows.append(
            {
                "id": pod["name"],
                "worker": link_cell(pod["name"], href(f"/workers/{pod['name']}")),
                "phase": pod.get("phase"),
                "run": link_cell(run, href(f"/runs/{run_id}")) if run_id is not None else "-",
                "rank": pod.get("rank"),
                "node": pod.get("node") or "-",
                "ip": pod.get("ip") or "-",
                "updated": show_date(pod.get("updated_at")),
            }
        )
    return rows


def _order(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Newest runs first, then by rank."""
    return sorted(pods, key=lambda p: (-(p.get("run_id") or 0), p.get("rank") or 0, p["name"]))


def register(app: Dash) -> None:
    graphs = [f"workers-{r.key}" for r in RESOURCES]

    @app.callback(
        Output("workers-error", "children"),
        Output("workers-table", "rowData"),
        Output("workers-empty", "children"),
        Output("workers-content", "style"),
        *[Output(g, "figure") for g in graphs],
        *[Output(g, "extendData") for g in graphs],
        Output("workers-feed", "data"),
        Input("workers-interval", "n_intervals"),
        State("workers-feed", "data"),
        State("workers-table", "rowData"),
    )
    @guarded(outputs=5 + 2 * len(graphs), error_at=0)
    def refresh(_n: int | None, feed: dict[str, Any] | None, shown: list | None) -> tuple:
        api = access()
        with api.client() as client:
            pods = _order(client.get_pods())
            runs = {r["id"]: r["name"] for r in client.get_runs()}
            rows = pod_rows(pods, runs)
            table = rows if rows != shown else no_update
            if not pods:
                blanks = [figures.blank(r.title, "no workers") for r in RESOURCES]
                return (
                    table, empty_state(), {"display": "none"}, *blanks,
                    *[no_update] * len(graphs), None,
                )  # fmt: skip
            names = [p["name"] for p in pods]
            latest = newest_per_pod(client)
            fresh = [
                n for n in names if latest.get(n, "") > (feed or {}).get("cursors", {}).get(n, "")
            ]
            if (
                not feed
                or feed.get("pods") != names
                or feed.get("points", 0) > RELOAD_AFTER
                or (fresh and not feed.get("drawn"))  # the first points: no "no samples" note
            ):
                series = client.get_all_metrics(summarize=SUMMARIZE)
                figs = resource_feed.charts(names, series)
                feed = resource_feed.start(names, series, latest)
                return (table, None, {}, *figs, *[no_update] * len(graphs), feed)
            new = {
                name: (
                    Owner.pod(name).fetch(client, since=feed["cursors"].get(name),
                                          summarize=SUMMARIZE),
                    latest[name],
                )
                for name in fresh
            }  # fmt: skip
        extensions, feed = resource_feed.extend(feed, new)
        return (table, None, {}, *[no_update] * len(graphs), *extensions, feed)
