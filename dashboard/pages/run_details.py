"""Run details (``/runs/<id>``): its story (state, progress, why it failed), the all-reduce
report of a 0a run, training curves against time and epoch with the goal, the per-phase time
split, the workers' resource usage and logs, the result and reproducibility record,
downloads, and stop / delete. Each part's callbacks live in :mod:`dashboard.pages.run`."""

from __future__ import annotations

import logging
import threading
from typing import Any

from dash import Dash, dcc, html

from dashboard.api import access, href
from dashboard.components import error_box, graph, poller, section
from dashboard.downloads import run_links
from dashboard.pages.run import actions, labels, logs, resources, status, training
from dashboard.series import RESOURCES, SPLIT_GROUPS

log = logging.getLogger(__name__)

PAGE = {"path_template": "/runs/<run_id>", "name": "Run", "title": "mlbench: run"}


def _run_id(value: Any) -> int | None:
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return None
    return number if number >= 1 else None


def layout(run_id: str | None = None, **_query: Any) -> html.Div:
    rid = _run_id(run_id)
    if rid is None:
        return html.Div([html.H2("No such run"), html.P(f"{run_id!r} is not a run id.")])
    downloads = [
        html.A(label, href=href(path), className="button", id=f"run-download-{i}", download="")
        for i, (label, path) in enumerate(run_links(rid))
    ]
    stop = dcc.ConfirmDialogProvider(
        html.Button("Stop", className="button warn"),
        id="run-stop",
        message="Stop this run? Its workers are stopped; its data is kept.",
    )
    delete = dcc.ConfirmDialogProvider(
        html.Button("Delete", className="button danger"),
        id="run-delete",
        message="Delete this run with its metrics, logs and workers? This cannot be undone.",
    )
    content = html.Div(
        [
            html.Div(id="run-story"),
            html.Div(id="run-notice"),
            html.Div(
                [
                    *downloads,
                    html.Span(className="spacer"),
                    html.Span(stop, id="run-stop-box", style={"display": "none"}),
                    delete,
                ],
                className="actions",
            ),
            section("Status", html.Div(id="run-info")),
            labels.part(),
            html.Div(
                section("All-reduce report", html.Div(id="run-report")),
                id="run-report-box",
                style={"display": "none"},
            ),
            html.Div(
                [
                    section(
                        "Training",
                        html.Div(
                            [
                                html.Label("Metrics", htmlFor="run-metric-picker"),
                                dcc.Dropdown(
                                    id="run-metric-picker", multi=True, placeholder="metrics"
                                ),
                            ],
                            className="picker",
                        ),
                        error_box("run-metrics-error"),
                        html.Div(
                            [graph("run-graph-time", 400), graph("run-graph-epoch", 400)],
                            className="grid two",
                        ),
                    ),
                    section(
                        "Time per phase",
                        dcc.RadioItems(
                            id="run-split-mode",
                            value="groups",
                            inline=True,
                            options=[
                                {
                                    "label": " compute / communication / data loading",
                                    "value": "groups",
                                },
                                {"label": " every phase", "value": "phases"},
                            ],
                        ),  # fmt: skip
                        graph("run-split", 300),
                    ),
                ],
                id="run-charts-box",
            ),
            section(
                f"Workers' resource usage (newest {resources.WINDOW:,} samples each)",
                error_box("run-res-error"),
                html.Div([graph(f"run-res-{r.key}") for r in RESOURCES], className="grid two"),
            ),
            section(
                "Logs",
                html.Div(
                    [
                        html.Label("Worker", htmlFor="run-log-rank"),
                        dcc.Dropdown(
                            id="run-log-rank",
                            value="all",
                            clearable=False,
                            options=[{"label": "all ranks", "value": "all"}],
                        ),
                    ],
                    className="picker narrow",
                ),
                error_box("run-logs-error"),
                html.Pre(id="run-logs", className="logs", children=[]),
            ),
            section("Result", html.Div(id="run-result")),
            section("Reproducibility record", html.Div(id="run-record")),
        ],
        id="run-content",
    )
    return html.Div(
        [
            dcc.Store(id="run-id", data=rid),
            dcc.Location(id="run-location", refresh=True),
            html.Div(html.H2(f"Run {rid}"), id="run-header"),
            error_box("run-error"),
            content,
            dcc.Store(id="run-feed"),
            dcc.Store(id="run-status-seen"),
            dcc.Store(id="run-res-feed"),
            dcc.Store(id="run-log-feed"),
            dcc.Store(id="run-scrolled"),
            poller("run-interval"),
        ]
    )


_PREFETCHING = threading.BoundedSemaphore(2)


def prefetch(run_id: int) -> None:
    """Start reading what the page's charts will ask for, as soon as the browser asks for the
    page (a third of a second before the page's first callback): the page's callback then
    finds the series read or being read (:class:`~dashboard.live.SummaryCache`). At most two
    at a time; none when the caller has no access (the API refuses the first read)."""
    if not _PREFETCHING.acquire(blocking=False):
        return
    api = access()

    def work() -> None:
        try:
            run, newest, goal = training.look_up(api, run_id)
            training.read(api, run, newest, training.picked(None, sorted(newest), goal),
                          SPLIT_GROUPS)  # fmt: skip
        except Exception:  # noqa: BLE001 - only a head start: the callback reports errors
            log.debug("prefetch of run %s failed", run_id, exc_info=True)
        finally:
            _PREFETCHING.release()

    threading.Thread(target=work, name=f"mlbench-prefetch-{run_id}", daemon=True).start()


def register(app: Dash) -> None:
    for part in (status, training, resources, logs, actions, labels):
        part.register(app)
