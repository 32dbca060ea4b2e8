"""Run details (``/runs/<id>``): state and timing, training curves against time and epoch
with the goal, the per-phase time split, the workers' resource usage and logs, the result
and reproducibility record, downloads, and stop / delete."""

from __future__ import annotations

import logging
import threading
from typing import Any

from dash import Dash, Input, Output, Patch, State, ctx, dcc, html, no_update

from dashboard import figures, live
from dashboard.api import Access, access, error_message, guarded, href
from dashboard.components import error_box, facts, graph, json_block, poller, section, state_badge
from dashboard.downloads import run_links
from dashboard.live import Owner
from dashboard.series import (
    RESOURCES,
    SPLIT_GROUPS,
    SPLIT_PHASES,
    Series,
    derive,
    epoch_at,
    epoch_marks,
    join_marks,
    newest_date,
    run_goal,
    split_bars,
)
from mlbench_core import run_fields
from mlbench_core.launch import limits
from mlbench_core.text import TERMINAL, duration, result_summary, show_date, show_seconds

log = logging.getLogger(__name__)

PAGE = {"path_template": "/runs/<run_id>", "name": "Run", "title": "mlbench: run"}
SUMMARIZE = 600  # points per series the API sends for a chart (about one per pixel)
RELOAD_AFTER = 20_000  # points appended to the charts before they are loaded afresh
RESOURCE_WINDOW = 600  # newest samples per worker series on this page
LOG_LINES = 2000  # lines shown (the newest)
LOG_PAGE = 5000
LOG_PAGES = 40


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
    actions = [
        dcc.ConfirmDialogProvider(
            html.Button("Stop", className="button warn"),
            id="run-stop",
            message="Stop this run? Its workers are stopped; its data is kept.",
        ),
        dcc.ConfirmDialogProvider(
            html.Button("Delete", className="button danger"),
            id="run-delete",
            message="Delete this run with its metrics, logs and workers? This cannot be undone.",
        ),
    ]
    return html.Div(
        [
            dcc.Store(id="run-id", data=rid),
            dcc.Location(id="run-location", refresh=True),
            html.Div(html.H2(f"Run {rid}"), id="run-header"),
            error_box("run-error"),
            html.Div(id="run-notice"),
            html.Div([*downloads, html.Span(className="spacer"), *actions], className="actions"),
            section("Status", html.Div(id="run-info")),
            section(
                "Training",
                html.Div(
                    [
                        html.Label("Metrics", htmlFor="run-metric-picker"),
                        dcc.Dropdown(id="run-metric-picker", multi=True, placeholder="metrics"),
                    ],
                    className="picker",
                ),
                error_box("run-metrics-error"),
                html.Div(
                    [graph("run-graph-time", 400), graph("run-graph-epoch", 400)],
                    className="grid two",
                ),
            ),  # fmt: skip
            section(
                "Time per phase",
                dcc.RadioItems(
                    id="run-split-mode",
                    value="groups",
                    inline=True,
                    options=[
                        {"label": " compute / communication / data loading", "value": "groups"},
                        {"label": " every phase", "value": "phases"},
                    ],
                ),
                graph("run-split", 300),
            ),
            section(
                f"Workers' resource usage (newest {RESOURCE_WINDOW:,} samples each)",
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
            ),  # fmt: skip
            section("Result", html.Div(id="run-result")),
            section("Reproducibility record", html.Div(id="run-record")),
            dcc.Store(id="run-feed"),
            dcc.Store(id="run-res-feed"),
            dcc.Store(id="run-log-feed"),
            dcc.Store(id="run-scrolled"),
            poller("run-interval"),
        ]
    )


# -- status, result, record -------------------------------------------------------------------


def _info(run: dict[str, Any]) -> html.Dl:
    meta = run.get("job_metadata") or {}
    warnings = meta.get("warnings")
    waiting = meta.get("waiting") if run.get("state") == "INITIALIZED" else None
    queued = [("waiting", waiting.get("reason"))] if isinstance(waiting, dict) else []
    return facts(
        [
            ("state", state_badge(run.get("state"))),
            *queued,
            ("benchmark", run.get("benchmark") or run.get("image_name")),
            ("workers", str(run.get("num_workers"))),
            *limits.rows(run),
            ("backend", f"{run.get('backend')}{' + GPU' if run.get('gpu_enabled') else ''}"),
            ("goal", run_fields.goal_label(run)),
            *run_fields.choices(run),
            ("created", show_date(run.get("created_at"))),
            ("started", show_date(run.get("started_at"))),
            ("finished", show_date(run.get("finished_at"))),
            ("duration", show_seconds(duration(run))),
            ("DAG run", run.get("job_id")),
            ("warnings", "; ".join(map(str, warnings)) if isinstance(warnings, list) else warnings),
        ]
    )


def _result(run: dict[str, Any]) -> list[Any]:
    result = run.get("result")
    if result in (None, {}, ""):
        waiting = "The run ended without a result." if run.get("state") in TERMINAL else (
            "No result yet: rank 0 records it when the run ends."
        )  # fmt: skip
        return [html.P(waiting, className="muted")]
    return [html.P(result_summary(result), className="summary"), json_block(result, "")]


# -- training curves and the time split -----------------------------------------------------


def _picked(value: Any, available: list[str], goal: dict[str, Any] | None) -> list[str]:
    if isinstance(value, list) and value:
        return [str(v) for v in value]
    preferred = ["train_loss", goal["metric"] if goal else "val_loss"]
    chosen = [n for n in preferred if n in available]
    if not chosen:
        chosen = [n for n in available if not n.startswith("time_") and n != "epoch"][:2]
    return chosen or preferred


def _options(available: list[str]) -> list[dict[str, str]]:
    return [{"label": n, "value": n} for n in available if not n.startswith("time_")]


def _start(series: Series) -> str | None:
    firsts = [points[0]["date"] for points in series.values() if points]
    return min(firsts) if firsts else None


def _epoch_xy(points: list[dict[str, Any]], marks: list) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for x, point in zip(epoch_at((p["date"] for p in points), marks), points, strict=True):
        if x is not None:
            xs.append(x)
            ys.append(float(point["value"]))
    return xs, ys


def _charts(picked: list[str], split_order: tuple[str, ...], series: Series, marks: list,
            goal: dict[str, Any] | None) -> tuple[Any, Any, Any]:  # fmt: skip
    by_time = {
        n: ([p["date"] for p in series.get(n, [])], [float(p["value"]) for p in series.get(n, [])])
        for n in picked
    }
    by_epoch = {n: _epoch_xy(series.get(n, []), marks) for n in picked}
    bars = {n: split_bars(series.get(n, []), marks) for n in split_order}
    return (
        figures.metrics(picked, by_time, x_title="time (UTC)", goal=goal, title="Against time"),
        figures.metrics(picked, by_epoch, x_title="epoch", goal=goal, title="Against epoch"),
        figures.split(split_order, bars, title="Seconds per epoch"),
    )


def _look_up(api: Access, run_id: int) -> tuple[dict[str, Any], Series, dict[str, Any] | None]:
    """The run, the newest point of each of its series, and its goal (concurrently)."""

    def call(method: str, *args: Any, **kwargs: Any) -> Any:
        with api.client() as client:
            return getattr(client, method)(*args, **kwargs)

    run, newest, benchmarks = live.together(
        lambda: call("get_run", run_id),
        lambda: call("get_run_metrics", run_id, last_n=1),
        lambda: call("get_benchmarks"),
    )
    return run, newest, run_goal(run, benchmarks)


def _read(api: Access, run: dict[str, Any], newest: Series, picked: list[str],
          split_order: tuple[str, ...]) -> Series:  # fmt: skip
    """The series the training charts draw, downsampled (cached across visits)."""
    wanted = [*picked, "epoch", *(s for s in split_order if s in newest)]
    return live.fetch_summaries(
        api, Owner.run(run["id"]), list(dict.fromkeys(wanted)), summarize=SUMMARIZE,
        cursor=newest_date(newest), version=str(run.get("created_at")),
    )  # fmt: skip


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
            run, newest, goal = _look_up(api, run_id)
            _read(api, run, newest, _picked(None, sorted(newest), goal), SPLIT_GROUPS)
        except Exception:  # noqa: BLE001 - only a head start: the callback reports errors
            log.debug("prefetch of run %s failed", run_id, exc_info=True)
        finally:
            _PREFETCHING.release()

    threading.Thread(target=work, name=f"mlbench-prefetch-{run_id}", daemon=True).start()


def register(app: Dash) -> None:  # noqa: C901 - one callback per part of the page
    @app.callback(
        Output("run-error", "children"),
        Output("run-header", "children"),
        Output("run-info", "children"),
        Output("run-result", "children"),
        Output("run-record", "children"),
        Output("run-log-rank", "options"),
        Input("run-interval", "n_intervals"),
        State("run-id", "data"),
    )
    @guarded(outputs=6, error_at=0)
    def status(_n: int | None, run_id: int) -> tuple:
        with access().client() as client:
            run = client.get_run(run_id)
        header = html.H2([run["name"], " ", state_badge(run["state"])])
        ranks = [{"label": "all ranks", "value": "all"}] + [
            {"label": f"rank {r}", "value": r} for r in range(int(run.get("num_workers") or 0))
        ]
        record = json_block(
            run.get("record"),
            "No record yet: rank 0 writes it (versions, hardware, seed, hyperparameters, data) "
            "when training starts.",
        )
        return header, _info(run), _result(run), record, ranks

    @app.callback(
        Output("run-metrics-error", "children"),
        Output("run-metric-picker", "options"),
        Output("run-metric-picker", "value"),
        Output("run-graph-time", "figure"),
        Output("run-graph-time", "extendData"),
        Output("run-graph-epoch", "figure"),
        Output("run-graph-epoch", "extendData"),
        Output("run-split", "figure"),
        Output("run-split", "extendData"),
        Output("run-feed", "data"),
        Input("run-interval", "n_intervals"),
        Input("run-metric-picker", "value"),
        Input("run-split-mode", "value"),
        State("run-id", "data"),
        State("run-feed", "data"),
    )
    @guarded(outputs=10, error_at=0)
    def training(_n: int | None, value: Any, mode: str, run_id: int, feed: Any) -> tuple:
        split_order = SPLIT_PHASES if mode == "phases" else SPLIT_GROUPS
        same = (
            feed
            and feed.get("run") == run_id
            and feed.get("split") == list(split_order)
            and (not value or feed.get("picked") == list(value))
        )
        # A poll that overtook a change of the picker or the mode reloads too: Dash drops the
        # answer of the earlier call when a later one of the same callback is under way.
        if ctx.triggered_id == "run-interval" and same and feed["points"] <= RELOAD_AFTER:
            return _poll_training(feed)
        api = access()
        run, newest, goal = _look_up(api, run_id)
        available = sorted(newest)
        picked = _picked(value, available, goal)
        cursor = newest_date(newest)
        series = _read(api, run, newest, picked, split_order)
        marks = epoch_marks(series.get("epoch", []), _start(series))
        by_time, by_epoch, bars = _charts(picked, split_order, series, marks, goal)
        feed = {
            "run": run_id,
            "picked": picked,
            "split": list(split_order),
            "cursor": cursor,
            "marks": marks[-2:],
            "drawn": live.drawn_to(series),
            "available": available,
            "points": 0,
        }
        return (
            _options(available), picked, by_time, no_update, by_epoch, no_update, bars,
            no_update, feed,
        )  # fmt: skip

    def _poll_training(feed: dict[str, Any]) -> tuple:
        owner = Owner.run(feed["run"])
        polled, cursor = live.poll(access(), owner, feed["cursor"], summarize=SUMMARIZE)
        new = live.unseen(polled, feed["drawn"])
        if not new:
            return (no_update,) * 8 + ({**feed, "cursor": cursor},)
        marks = join_marks(feed["marks"], epoch_marks(new.get("epoch", []), None))
        timed, epoched, bars = [], [], []
        for i, name in enumerate(feed["picked"]):
            points = new.get(name, [])
            timed.append((i, [p["date"] for p in points], [float(p["value"]) for p in points]))
            epoched.append((i, *_epoch_xy(points, marks)))
        for i, name in enumerate(feed["split"]):
            bars.append((i, *split_bars(new.get(name, []), marks)))
        available = sorted(set(feed["available"]) | set(new))
        options = _options(available) if available != feed["available"] else no_update
        feed = {
            **feed,
            "cursor": cursor,
            "marks": marks[-2:],
            "drawn": live.drawn_to(new, feed["drawn"]),
            "available": available,
            "points": feed["points"] + sum(len(points) for points in new.values()),
        }
        return (
            options, no_update, no_update, figures.extension(timed), no_update,
            figures.extension(epoched), no_update, figures.extension(bars), feed,
        )  # fmt: skip

    # -- the workers' resource usage ----------------------------------------------------------

    res_graphs = [f"run-res-{r.key}" for r in RESOURCES]

    @app.callback(
        Output("run-res-error", "children"),
        *[Output(g, "figure") for g in res_graphs],
        *[Output(g, "extendData") for g in res_graphs],
        Output("run-res-feed", "data"),
        Input("run-interval", "n_intervals"),
        State("run-id", "data"),
        State("run-res-feed", "data"),
    )
    @guarded(outputs=2 + 2 * len(res_graphs), error_at=0)
    def resources(_n: int | None, run_id: int, feed: Any) -> tuple:
        api = access()
        with api.client() as client:
            pods = sorted(client.get_pods(run_id=run_id), key=lambda p: p.get("rank") or 0)
        names = [p["name"] for p in pods]
        keep = [no_update] * len(res_graphs)
        if not names:
            blanks = [figures.blank(r.title, "no workers yet") for r in RESOURCES]
            return (*blanks, *keep, None)
        if (
            not feed
            or feed.get("pods") != names
            or feed["points"] > RELOAD_AFTER
            or not feed.get("drawn")
        ):
            loaded = live.load_all(api, [Owner.pod(n) for n in names], last_n=RESOURCE_WINDOW)
            series = {o.key: s for o, (s, _) in loaded.items()}
            if feed and feed.get("pods") == names and not any(series.values()):
                return (*keep, *keep, feed)  # still nothing to draw: leave the charts be
            figs = []
            for resource in RESOURCES:
                traces = [(n, *derive(resource, series[n].get(resource.series, []))) for n in names]
                figs.append(figures.lines(resource.title, resource.unit, traces))
            feed = {
                "pods": names,
                "drawn": any(series.values()),
                "cursors": {o.key: c for o, (_, c) in loaded.items()},
                "tails": {n: live.tails(series[n]) for n in names},
                "points": 0,
            }
            return (*figs, *keep, feed)
        polled = live.poll_all(api, {Owner.pod(n): feed["cursors"].get(n) for n in names})
        parts: dict[str, list] = {r.key: [] for r in RESOURCES}
        for index, name in enumerate(names):
            new, cursor = polled[Owner.pod(name)]
            before = feed["tails"].get(name, {})
            for resource in RESOURCES:
                xs, ys = derive(resource, new.get(resource.series, []), before.get(resource.series))
                parts[resource.key].append((index, xs, ys))
                feed["points"] += len(xs)
            feed["tails"][name] = {**before, **live.tails(new)}
            feed["cursors"][name] = cursor
        return (*keep, *[figures.extension(parts[r.key]) for r in RESOURCES], feed)

    # -- logs -------------------------------------------------------------------------------

    @app.callback(
        Output("run-logs-error", "children"),
        Output("run-logs", "children"),
        Output("run-log-feed", "data"),
        Input("run-interval", "n_intervals"),
        Input("run-log-rank", "value"),
        State("run-id", "data"),
        State("run-log-feed", "data"),
    )
    @guarded(outputs=3, error_at=0)
    def logs(_n: int | None, rank: Any, run_id: int, feed: Any) -> tuple:
        rank_arg = None if rank in (None, "all") else int(rank)
        with access().client() as client:
            if feed and feed.get("run") == run_id and feed.get("rank") == rank:
                page = client.get_logs(run_id, rank=rank_arg, after=feed["next"], limit=LOG_PAGE)
                if not page["lines"]:
                    return no_update, no_update
                lines = [_line(x, rank_arg) for x in page["lines"]][-LOG_LINES:]
                patch = Patch()
                overflow = feed["shown"] + len(lines) - LOG_LINES
                for _ in range(max(0, overflow)):
                    del patch[0]
                patch.extend(lines)
                shown = min(LOG_LINES, feed["shown"] + len(lines))
                return patch, {**feed, "next": page["next"], "shown": shown}
            after, lines = 0, []
            for _ in range(LOG_PAGES):
                page = client.get_logs(run_id, rank=rank_arg, after=after, limit=LOG_PAGE)
                lines = (lines + [_line(x, rank_arg) for x in page["lines"]])[-LOG_LINES:]
                after = page["next"]
                if len(page["lines"]) < LOG_PAGE:
                    break
        if not lines:
            lines = [html.Span("No output yet.", className="muted")]
            shown = 0
        else:
            shown = len(lines)
        return lines, {"run": run_id, "rank": rank, "next": after, "shown": shown}

    app.clientside_callback(
        """
        function(children) {
            setTimeout(function() {
                var el = document.getElementById('run-logs');
                if (el) { el.scrollTop = el.scrollHeight; }
            }, 0);
            return window.dash_clientside.no_update;
        }
        """,
        Output("run-scrolled", "data"),
        Input("run-logs", "children"),
    )

    # -- stop and delete --------------------------------------------------------------------

    @app.callback(
        Output("run-notice", "children"),
        Output("run-location", "href"),
        Input("run-stop", "submit_n_clicks"),
        Input("run-delete", "submit_n_clicks"),
        State("run-id", "data"),
        prevent_initial_call=True,
    )
    def act(_stop: int | None, _delete: int | None, run_id: int) -> tuple:
        try:
            with access().client() as client:
                if ctx.triggered_id == "run-delete":
                    client.delete_run(run_id)
                    return no_update, href("/runs")
                run = client.stop_run(run_id)
        except Exception as exc:  # noqa: BLE001 - shown on the page
            return html.Div(error_message(exc), className="error"), no_update
        return html.Div(f"Stop requested: the run is {run['state']}.", className="ok"), no_update


def _line(line: dict[str, Any], rank: int | None) -> html.Span:
    prefix = "" if rank is not None else f"[{line['rank']}] "
    return html.Span(f"{prefix}{line['line']}\n", className=f"log-{line['stream']}")
