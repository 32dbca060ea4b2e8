"""Worker details (``/workers/<name>``): the pod, and every series it posted, live."""

from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, State, dcc, html, no_update

from dashboard import figures, live
from dashboard.api import access, guarded, href
from dashboard.components import error_box, facts, graph, poller, section
from dashboard.live import Owner
from dashboard.series import RESOURCE_BY_SERIES, RESOURCES, Series, derive, describe_series
from mlbench_core.text import show_date

PAGE = {"path_template": "/workers/<name>", "name": "Worker", "title": "mlbench: worker"}
SUMMARIZE = 1000
RELOAD_AFTER = 20_000
_ORDER = {r.series: i for i, r in enumerate(RESOURCES)}


def layout(name: str | None = None, **_query: Any) -> html.Div:
    return html.Div(
        [
            dcc.Store(id="worker-name", data=name),
            html.H2(f"Worker {name}"),
            error_box("worker-error"),
            html.Div(
                html.A(
                    "All series (zip)",
                    href=href(f"/download/workers/{name}/metrics.zip"),
                    className="button",
                    download="",
                ),
                className="actions",
            ),
            section("Pod", html.Div(id="worker-info")),
            section("Series (whole history)", graph("worker-graphs", 600)),
            dcc.Store(id="worker-feed"),
            poller("worker-interval"),
        ]
    )


def _ordered(names: list[str]) -> list[str]:
    """The resource series first (CPU, memory, network), then the others by name."""
    return sorted(names, key=lambda n: (_ORDER.get(n, len(_ORDER)), n))


def _xy(name: str, points: list[dict[str, Any]], before: dict[str, Any] | None = None) -> tuple:
    resource = RESOURCE_BY_SERIES.get(name)
    if resource is not None:
        return derive(resource, points, before)
    return [p["date"] for p in points], [float(p["value"]) for p in points]


def _figure(names: list[str], series: Series) -> Any:
    if not names:
        return figures.blank("Series", "This worker has posted no metrics yet.", height=300)
    rows = [(*describe_series(n), *_xy(n, series.get(n, []))) for n in names]
    return figures.panels(rows, "Series")


def register(app: Dash) -> None:
    @app.callback(
        Output("worker-error", "children"),
        Output("worker-info", "children"),
        Output("worker-graphs", "figure"),
        Output("worker-graphs", "extendData"),
        Output("worker-feed", "data"),
        Input("worker-interval", "n_intervals"),
        State("worker-name", "data"),
        State("worker-feed", "data"),
    )
    @guarded(outputs=5, error_at=0)
    def refresh(_n: int | None, name: str, feed: Any) -> tuple:
        api = access()
        owner = Owner.pod(name)
        with api.client() as client:
            pod = next((p for p in client.get_pods() if p["name"] == name), None)
        if pod is None:
            message = html.P(f"There is no worker {name!r} (its run may have been deleted).")
            return message, figures.blank("Series", "no such worker"), no_update, None
        run_id = pod.get("run_id")
        info = facts(
            [
                ("phase", pod.get("phase")),
                ("run", dcc.Link(str(run_id), href=href(f"/runs/{run_id}")) if run_id else "-"),
                ("rank", pod.get("rank")),
                ("node", pod.get("node")),
                ("IP", pod.get("ip")),
                ("created", show_date(pod.get("created_at"))),
                ("updated", show_date(pod.get("updated_at"))),
            ]
        )
        if not feed or feed.get("pod") != name or feed["points"] > RELOAD_AFTER:
            series, cursor = live.load(api, owner, summarize=SUMMARIZE)
            names = _ordered(list(series))
            feed = {"pod": name, "names": names, "cursor": cursor, "points": 0,
                    "tails": live.tails(series)}  # fmt: skip
            return info, _figure(names, series), no_update, feed
        new, cursor = live.poll(api, owner, feed["cursor"], summarize=SUMMARIZE)
        if set(new) - set(feed["names"]):  # a new series: draw everything again
            series, cursor = live.load(api, owner, summarize=SUMMARIZE)
            names = _ordered(list(series))
            feed = {**feed, "names": names, "cursor": cursor, "points": 0,
                    "tails": live.tails(series)}  # fmt: skip
            return info, _figure(names, series), no_update, feed
        parts = []
        for i, series_name in enumerate(feed["names"]):
            points = new.get(series_name, [])
            xs, ys = _xy(series_name, points, feed["tails"].get(series_name))
            parts.append((i, xs, ys))
            feed["points"] += len(xs)
        feed["tails"] = {**feed["tails"], **live.tails(new)}
        feed["cursor"] = cursor
        return info, no_update, figures.extension(parts), feed
