"""The run page's charts of its workers' CPU, memory and network (the newest samples)."""

from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, State, no_update

from dashboard import figures, live, resource_feed
from dashboard.api import access, guarded
from dashboard.live import Owner
from dashboard.series import RESOURCES
from mlbench_core.api import NotFound

WINDOW = 600  # newest samples per worker series on this page
RELOAD_AFTER = 20_000  # points appended to the charts before they are loaded afresh
GRAPHS = [f"run-res-{r.key}" for r in RESOURCES]


def register(app: Dash) -> None:
    @app.callback(
        Output("run-res-error", "children"),
        *[Output(g, "figure") for g in GRAPHS],
        *[Output(g, "extendData") for g in GRAPHS],
        Output("run-res-feed", "data"),
        Input("run-interval", "n_intervals"),
        State("run-id", "data"),
        State("run-res-feed", "data"),
    )
    @guarded(outputs=2 + 2 * len(GRAPHS), error_at=0, quiet=(NotFound,))  # the status says
    def resources(_n: int | None, run_id: int, feed: Any) -> tuple:
        api = access()
        with api.client() as client:
            pods = sorted(client.get_pods(run_id=run_id), key=lambda p: p.get("rank") or 0)
        names = [p["name"] for p in pods]
        keep = [no_update] * len(GRAPHS)
        if not names:
            blanks = [figures.blank(r.title, "no workers yet") for r in RESOURCES]
            return (*blanks, *keep, None)
        if (
            not feed
            or feed.get("pods") != names
            or feed["points"] > RELOAD_AFTER
            or not feed.get("drawn")
        ):
            loaded = live.load_all(api, [Owner.pod(n) for n in names], last_n=WINDOW)
            series = {o.key: s for o, (s, _) in loaded.items()}
            if feed and feed.get("pods") == names and not any(series.values()):
                return (*keep, *keep, feed)  # still nothing to draw: leave the charts be
            cursors = {o.key: c for o, (_, c) in loaded.items()}
            return (
                *resource_feed.charts(names, series), *keep,
                resource_feed.start(names, series, cursors),
            )  # fmt: skip
        polled = live.poll_all(api, {Owner.pod(n): feed["cursors"].get(n) for n in names})
        extensions, feed = resource_feed.extend(feed, {o.key: p for o, p in polled.items()})
        return (*keep, *extensions, feed)
