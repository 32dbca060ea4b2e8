"""Several runs on one chart: a metric of each run against wall time, epochs or samples seen;
runs of one configuration (repeated with other seeds) as their median with a min–max band;
the table of what differs between them. Plain data in, plain data out (the page draws it).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import numpy as np

from dashboard import live
from dashboard.api import access
from dashboard.series import epoch_at, epoch_marks, seconds
from mlbench_core import configuration
from mlbench_core.api import NotFound
from mlbench_core.configuration import LABELS
from mlbench_core.text import result_summary, show_number

__all__ = ["AXES", "Curve", "Group", "band", "curves", "differences", "grouped", "series_csv"]

Points = Sequence[Mapping[str, Any]]

# What the x axis counts, with its title.
AXES: dict[str, str] = {
    "time": "wall time since the run started (s)",
    "epoch": "epoch",
    "samples": "training samples seen (all ranks)",
}
GRID_POINTS = 200  # where a band's median and spread are taken


@dataclass
class Curve:
    """One run's metric against the chosen axis."""

    run_id: int
    name: str
    xs: list[float]
    ys: list[float]


@dataclass
class Group:
    """Runs of one configuration (they differ in their seed or name only)."""

    config: dict[str, str]
    runs: list[dict[str, Any]] = field(default_factory=list)


def _start(run: Mapping[str, Any], series: Mapping[str, Points]) -> float | None:
    """When the run started: its ``started_at``, or its first point if that is earlier."""
    times = [seconds(p["date"]) for points in series.values() for p in points[:1]]
    if run.get("started_at"):
        times.append(seconds(str(run["started_at"])))
    return min(times) if times else None


def _samples(point: Mapping[str, Any]) -> float | None:
    try:
        value = json.loads(point.get("metadata") or "{}").get("samples")
    except (ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) else None


def xs_of(run: Mapping[str, Any], series: Mapping[str, Points], metric: str,
          axis: str) -> tuple[list[float], list[float]]:  # fmt: skip
    """The run's ``metric`` points as (x, y) on ``axis``; points without an x are left out
    (before an epoch's length is known; posted without the samples seen)."""
    points = list(series.get(metric) or [])
    ys = [float(p["value"]) for p in points]
    if axis == "time":
        start = _start(run, series)
        xs: list[float | None] = [
            None if start is None else seconds(p["date"]) - start for p in points
        ]
    elif axis == "epoch":
        start = run.get("started_at")
        marks = epoch_marks(series.get("epoch") or [], str(start) if start else None)
        xs = list(epoch_at((p["date"] for p in points), marks))
    elif axis == "samples":
        xs = [_samples(p) for p in points]
    else:
        raise ValueError(f"axis {axis!r}: one of {', '.join(AXES)}")
    kept = [(x, y) for x, y in zip(xs, ys, strict=True) if x is not None]
    return [x for x, _ in kept], [y for _, y in kept]


def curves(runs: Sequence[Mapping[str, Any]], series: Mapping[int, Mapping[str, Points]],
           metric: str, axis: str) -> list[Curve]:  # fmt: skip
    """Each run's curve (``series``: each run's series by run id)."""
    out = []
    for run in runs:
        xs, ys = xs_of(run, series.get(run["id"], {}), metric, axis)
        out.append(Curve(run["id"], run["name"], xs, ys))
    return out


def grouped(runs: Sequence[dict[str, Any]]) -> list[Group]:
    """``runs`` by configuration (the whole key: nothing varies), in the order first seen."""
    out: dict[tuple, Group] = {}
    for run in runs:
        config = configuration.configuration(run)
        out.setdefault(tuple(sorted(config.items())), Group(config)).runs.append(run)
    return list(out.values())


def band(members: Sequence[Curve]) -> tuple[list[float], list[float], list[float], list[float]]:
    """(x, median, min, max) of ``members`` where every one of them has points: on a grid
    of the x range they share, each curve taken as the line through its points."""
    usable = [c for c in members if c.xs]
    if len(usable) < 2:
        return [], [], [], []
    ordered = [np.array(sorted(zip(c.xs, c.ys, strict=True))).T for c in usable]
    low = max(xs[0] for xs, _ in ordered)
    high = min(xs[-1] for xs, _ in ordered)
    if high < low:
        return [], [], [], []
    shared = np.unique(np.concatenate([xs[(xs >= low) & (xs <= high)] for xs, _ in ordered]))
    if len(shared) > GRID_POINTS or len(shared) < 2:
        shared = np.linspace(low, high, GRID_POINTS) if high > low else np.array([low])
    values = np.array([np.interp(shared, xs, ys) for xs, ys in ordered])
    return (shared.tolist(), np.median(values, axis=0).tolist(),
            values.min(axis=0).tolist(), values.max(axis=0).tolist())  # fmt: skip


# -- reading them ---------------------------------------------------------------------------

MAX_RUNS = 20


def run_ids(text: Any) -> list[int]:
    """``1,2,3`` as run ids (in order, each once; what is not an id left out)."""
    ids = [int(part) for part in str(text or "").split(",") if part.strip().isdigit()]
    return list(dict.fromkeys(ids))[:MAX_RUNS]


def query(runs: list[int], metric: str | None, axis: str, group: bool) -> str:
    """The query string naming what is drawn (the page's URL, the downloads')."""
    shown = {"runs": ",".join(map(str, runs)), "metric": metric or "", "axis": axis}
    return urlencode({**shown, "group": "1" if group else "0"})


def fetch(run_ids: list[int]) -> tuple[list[dict[str, Any]], list[str]]:
    """(the runs, the ids of those that are gone), read concurrently."""
    api = access()

    def one(run_id: int) -> dict[str, Any] | None:
        try:
            return live.call(api, "get_run", run_id)
        except NotFound:  # deleted since it was picked (other errors are the page's)
            return None

    found = live.together(*(lambda i=i: one(i) for i in run_ids)) if run_ids else []
    gone = [str(i) for i, run in zip(run_ids, found, strict=True) if run is None]
    return [run for run in found if run is not None], gone


def series_names(runs: list[dict[str, Any]]) -> list[str]:
    """Every series name some of ``runs`` has (one ``last_n=1`` read each, concurrently)."""
    api = access()
    newest = live.together(
        *(lambda r=r: live.call(api, "get_run_metrics", r["id"], last_n=1) for r in runs)
    ) if runs else []  # fmt: skip
    return sorted({name for series in newest for name in series})


def series_of(runs: list[dict[str, Any]], metric: str, axis: str) -> dict[int, dict]:
    """Each run's ``metric`` (with the points' metadata on the samples axis) and epochs."""
    api = access()

    def one(run_id: int) -> dict:
        series = live.call(api, "get_run_metrics", run_id, metric_filter=metric,
                           metadata=axis == "samples")  # fmt: skip
        if axis == "epoch":
            series |= live.call(api, "get_run_metrics", run_id, metric_filter="epoch")
        return series

    found = live.together(*(lambda r=r: one(r["id"]) for r in runs)) if runs else []
    return {run["id"]: series for run, series in zip(runs, found, strict=True)}


def drawn(runs: list[dict[str, Any]], metric: str, axis: str) -> list[Curve]:
    """The runs' curves of ``metric`` on ``axis``, read from the API."""
    return curves(runs, series_of(runs, metric, axis), metric, axis)


# -- what differs ---------------------------------------------------------------------------

# Fields of a run outside its configuration that repeated runs differ in.
APART = (("seed", "seed"), ("tags", "tags"))


def _apart(run: Mapping[str, Any], key: str) -> str:
    value = run.get(key)
    if key == "tags":
        return ", ".join(value or []) or "-"
    return "-" if value is None else str(value)


def _result(run: Mapping[str, Any], metric: str, curve: Curve | None) -> dict[str, str]:
    result = run.get("result") if isinstance(run.get("result"), Mapping) else {}
    ttt = result.get("time_to_target_s")
    throughput = result.get("throughput")
    return {
        "state": str(run.get("state") or "-"),
        "time to target (s)": show_number(round(ttt, 1)) if isinstance(ttt, int | float) else "-",
        "throughput (samples/s)": (
            show_number(round(throughput, 1)) if isinstance(throughput, int | float) else "-"
        ),
        f"last {metric}": show_number(round(curve.ys[-1], 4)) if curve and curve.ys else "-",
        "result": result_summary(run.get("result")),
    }


def differences(runs: Sequence[Mapping[str, Any]], metric: str,
                drawn: Sequence[Curve] = ()) -> tuple[list[str], list[dict[str, str]],
                                                      dict[str, str]]:  # fmt: skip
    """(columns, rows, fixed): one row per run with exactly the configuration keys (and the
    seed and tags) whose values differ between ``runs``, then its results; ``fixed``: the
    configuration they share."""
    keys = configuration.differing(runs)
    apart = [(k, label) for k, label in APART if len({_apart(r, k) for r in runs}) > 1]
    by_id = {c.run_id: c for c in drawn}
    rows = []
    for run in runs:
        config = configuration.configuration(run)
        row = {"run": str(run["name"])}
        row |= {LABELS[k]: config[k] for k in keys}
        row |= {label: _apart(run, k) for k, label in apart}
        row |= _result(run, metric, by_id.get(run["id"]))
        rows.append(row)
    columns = list(rows[0]) if rows else []
    shared = configuration.configuration(runs[0]) if runs else {}
    fixed = {LABELS[k]: v for k, v in shared.items() if k not in keys}
    return columns, rows, fixed


def table_csv(columns: Sequence[str], rows: Sequence[Mapping[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def series_csv(drawn: Sequence[Curve], metric: str, axis: str) -> str:
    """Every point drawn: one row per run and point (``run_id, run, <axis>, <metric>``)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["run_id", "run", axis, metric])
    for curve in drawn:
        for x, y in zip(curve.xs, curve.ys, strict=True):
            writer.writerow([curve.run_id, curve.name, repr(x), repr(y)])
    return out.getvalue()
