"""The run page's training charts: curves against time and epoch with the goal, and the
seconds per epoch of each phase. A first draw reads the series downsampled (cached across
visits); each poll appends only the points no chart has drawn yet."""

from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, State, ctx, no_update

from dashboard import figures, live
from dashboard.api import Access, access, guarded
from dashboard.live import Owner
from dashboard.series import (
    SPLIT_GROUPS,
    SPLIT_PHASES,
    Series,
    epoch_at,
    epoch_marks,
    join_marks,
    newest_date,
    run_goal,
    split_bars,
)
from mlbench_core.api import NotFound

SUMMARIZE = 600  # points per series the API sends for a chart (about one per pixel)
RELOAD_AFTER = 20_000  # points appended to the charts before they are loaded afresh


def picked(value: Any, available: list[str], goal: dict[str, Any] | None) -> list[str]:
    """The series the curves show: the user's pick, else the training loss and the goal's."""
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


def look_up(api: Access, run_id: int) -> tuple[dict[str, Any], Series, dict[str, Any] | None]:
    """The run, the newest point of each of its series, and its goal (concurrently)."""
    run, newest, benchmarks = live.together(
        lambda: live.call(api, "get_run", run_id),
        lambda: live.call(api, "get_run_metrics", run_id, last_n=1),
        lambda: live.call(api, "get_benchmarks"),
    )
    return run, newest, run_goal(run, benchmarks)


def read(api: Access, run: dict[str, Any], newest: Series, names: list[str],
         split_order: tuple[str, ...]) -> Series:  # fmt: skip
    """The series the training charts draw, downsampled (cached across visits)."""
    wanted = [*names, "epoch", *(s for s in split_order if s in newest)]
    return live.fetch_summaries(
        api, Owner.run(run["id"]), list(dict.fromkeys(wanted)), summarize=SUMMARIZE,
        cursor=newest_date(newest), version=str(run.get("created_at")),
    )  # fmt: skip


def first_draw(api: Access, run_id: int, value: Any, split_order: tuple[str, ...]) -> tuple:
    """(options, picked, by time, by epoch, bars, feed): the charts drawn afresh."""
    run, newest, goal = look_up(api, run_id)
    available = sorted(newest)
    names = picked(value, available, goal)
    series = read(api, run, newest, names, split_order)
    marks = epoch_marks(series.get("epoch", []), _start(series))
    by_time = {
        n: ([p["date"] for p in series.get(n, [])], [float(p["value"]) for p in series.get(n, [])])
        for n in names
    }
    by_epoch = {n: _epoch_xy(series.get(n, []), marks) for n in names}
    bars = {n: split_bars(series.get(n, []), marks) for n in split_order}
    feed = {
        "run": run_id,
        "picked": names,
        "split": list(split_order),
        "cursor": newest_date(newest),
        "marks": marks[-2:],
        "drawn": live.drawn_to(series),
        "available": available,
        "points": 0,
    }
    return (
        _options(available),
        names,
        figures.metrics(names, by_time, x_title="time (UTC)", goal=goal, title="Against time"),
        figures.metrics(names, by_epoch, x_title="epoch", goal=goal, title="Against epoch"),
        figures.split(split_order, bars, title="Seconds per epoch"),
        feed,
    )


def poll_draw(api: Access, feed: dict[str, Any]) -> tuple:
    """(options, by time, by epoch, bars, feed): what to append since the last draw; the
    extensions are None when there is nothing new."""
    polled, cursor = live.poll(api, Owner.run(feed["run"]), feed["cursor"], summarize=SUMMARIZE)
    new = live.unseen(polled, feed["drawn"])
    if not new:
        return None, None, None, None, {**feed, "cursor": cursor}
    marks = join_marks(feed["marks"], epoch_marks(new.get("epoch", []), None))
    timed, epoched, bars = [], [], []
    for i, name in enumerate(feed["picked"]):
        points = new.get(name, [])
        timed.append((i, [p["date"] for p in points], [float(p["value"]) for p in points]))
        epoched.append((i, *_epoch_xy(points, marks)))
    for i, name in enumerate(feed["split"]):
        bars.append((i, *split_bars(new.get(name, []), marks)))
    available = sorted(set(feed["available"]) | set(new))
    options = _options(available) if available != feed["available"] else None
    feed = {
        **feed,
        "cursor": cursor,
        "marks": marks[-2:],
        "drawn": live.drawn_to(new, feed["drawn"]),
        "available": available,
        "points": feed["points"] + sum(len(points) for points in new.values()),
    }
    return options, timed, epoched, bars, feed


def _or_no_update(value: Any) -> Any:
    return no_update if value is None else value


def register(app: Dash) -> None:
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
    @guarded(outputs=10, error_at=0, quiet=(NotFound,))  # the status says
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
            options, timed, epoched, bars, feed = poll_draw(access(), feed)
            if timed is None:
                return (*(no_update,) * 8, feed)
            return (
                _or_no_update(options), no_update, no_update, figures.extension(timed),
                no_update, figures.extension(epoched), no_update, figures.extension(bars), feed,
            )  # fmt: skip
        options, names, by_time, by_epoch, bars, feed = first_draw(
            access(), run_id, value, split_order
        )
        return (
            options, names, by_time, no_update, by_epoch, no_update, bars, no_update, feed,
        )  # fmt: skip
