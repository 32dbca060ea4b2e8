"""Pure derivations behind the dashboard's charts: no Dash, no HTTP.

Points are the API's ``{"date": ISO 8601, "value": number}``. Dates of one owner are
compared as text: the API always writes them as ``%Y-%m-%dT%H:%M:%S.%fZ`` (UTC), whose
order is time order.
"""

from __future__ import annotations

import math
import statistics
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

Point = Mapping[str, Any]
Series = dict[str, list[dict[str, Any]]]

BYTES_PER_MIB = 2**20


def seconds(date: str) -> float:
    """An API date as seconds since the Unix epoch."""
    parsed = datetime.fromisoformat(date.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def newest_date(series: Mapping[str, Sequence[Point]]) -> str | None:
    """The newest date of any point of ``series`` (None when there is no point)."""
    dates = [points[-1]["date"] for points in series.values() if points]
    return max(dates) if dates else None


# -- resource usage -------------------------------------------------------------------------


@dataclass(frozen=True)
class Resource:
    """One chart of a worker's resource usage, from one series the sampler posts."""

    key: str
    series: str
    title: str
    unit: str
    cumulative: bool  # a counter: the chart shows its rate per second
    scale: float  # chart value = value (or rate) x scale


RESOURCES: tuple[Resource, ...] = (
    Resource("cpu", "container_cpu_usage_seconds_total", "CPU", "cores", True, 1.0),
    Resource("memory", "container_memory_usage_bytes", "Memory", "MiB", False, 1 / BYTES_PER_MIB),
    Resource(
        "net-in", "container_network_receive_bytes_total", "Network in", "Mb/s", True, 8 / 1e6
    ),
    Resource(
        "net-out", "container_network_transmit_bytes_total", "Network out", "Mb/s", True, 8 / 1e6
    ),
)
RESOURCE_BY_SERIES = {r.series: r for r in RESOURCES}


def rate(
    points: Sequence[Point], previous: Point | None = None, scale: float = 1.0
) -> tuple[list[str], list[float]]:
    """Per-second rate of a cumulative counter, dated at the later point of each pair.

    ``previous`` is the point before ``points`` (from an earlier fetch), so that a poll's new
    points continue the line. A counter that went down was restarted from zero: its increase
    is its new value. Pairs without elapsed time (a point fetched twice) are skipped.
    """
    dates: list[str] = []
    values: list[float] = []
    before = previous
    for point in points:
        if before is not None:
            elapsed = seconds(point["date"]) - seconds(before["date"])
            if elapsed > 0:
                increase = float(point["value"]) - float(before["value"])
                if increase < 0:
                    increase = float(point["value"])
                dates.append(point["date"])
                values.append(increase / elapsed * scale)
        before = point
    return dates, values


def gauge(points: Sequence[Point], scale: float = 1.0) -> tuple[list[str], list[float]]:
    """The values themselves (scaled), with their dates."""
    return [p["date"] for p in points], [float(p["value"]) * scale for p in points]


def derive(
    resource: Resource, points: Sequence[Point], previous: Point | None = None
) -> tuple[list[str], list[float]]:
    """What the chart of ``resource`` shows for ``points``: a rate or the scaled values."""
    if resource.cumulative:
        return rate(points, previous, resource.scale)
    return gauge(points, resource.scale)


def describe_series(name: str) -> tuple[str, str]:
    """Title and unit of any series of a worker (a resource, or another series as is)."""
    resource = RESOURCE_BY_SERIES.get(name)
    if resource is not None:
        return resource.title, resource.unit
    return name, ""


# -- epochs ---------------------------------------------------------------------------------


def epoch_marks(epoch_points: Sequence[Point], start: str | None) -> list[tuple[float, float]]:
    """(time in s, epoch) pairs of the run's ``epoch`` series (value k at the end of epoch
    k), preceded by (start, 0) when ``start`` is before the first of them."""
    marks = join_marks([], [(seconds(p["date"]), float(p["value"])) for p in epoch_points])
    if start is not None:
        t0 = seconds(start)
        if not marks or t0 < marks[0][0]:
            marks.insert(0, (t0, 0.0))
    return marks


def join_marks(
    marks: Sequence[Sequence[float]], more: Iterable[Sequence[float]]
) -> list[tuple[float, float]]:
    """``marks`` followed by those of ``more`` that are later in time and epoch than the last
    one kept: a mark read twice (or out of order) would give an epoch of no duration."""
    out = [(float(t), float(e)) for t, e in marks]
    for t, e in more:
        if not out or (t > out[-1][0] and e > out[-1][1]):
            out.append((float(t), float(e)))
    return out


def epoch_at(dates: Iterable[str], marks: Sequence[tuple[float, float]]) -> list[float | None]:
    """The (fractional) epoch at each date, interpolated between the epoch marks.

    Before the first mark: that mark's epoch. After the last one: extrapolated at the pace of
    the last epoch, but never into the epoch after the next one (the current epoch goes on).
    None for every date when fewer than two marks say how long an epoch is.
    """
    dates = list(dates)
    if len(marks) < 2:
        return [None] * len(dates)
    times = [t for t, _ in marks]
    out: list[float | None] = []
    (t_a, e_a), (t_b, e_b) = marks[-2], marks[-1]
    pace = (e_b - e_a) / (t_b - t_a) if t_b > t_a else 0.0
    for date in dates:
        t = seconds(date)
        i = bisect_right(times, t)
        if i == 0:
            out.append(marks[0][1])
        elif i == len(marks):
            ahead = min((t - t_b) * pace, 0.999)
            out.append(e_b + max(ahead, 0.0))
        else:
            (t0, e0), (t1, e1) = marks[i - 1], marks[i]
            out.append(e0 + (e1 - e0) * (t - t0) / (t1 - t0) if t1 > t0 else e1)
    return out


def run_goal(
    run: Mapping[str, Any], benchmarks: Sequence[Mapping[str, Any]] | None = None
) -> dict[str, Any] | None:
    """The run's goal ``{"metric", "target"}``: from its result when the workers recorded
    it, else from its benchmark's registry entry (the light goal for a light target); none
    for synthetic data (throughput only)."""
    if run.get("synthetic"):
        return None
    result = run.get("result")
    if isinstance(result, Mapping) and isinstance(result.get("goal"), Mapping):
        goal = result["goal"]
        if "metric" in goal and isinstance(goal.get("target"), int | float):
            return {"metric": goal["metric"], "target": float(goal["target"])}
    for spec in benchmarks or ():
        if spec.get("id") == run.get("benchmark"):
            goal = spec.get("light_goal") if run.get("light_target") else spec.get("goal")
            if isinstance(goal, Mapping) and isinstance(goal.get("target"), int | float):
                return {"metric": goal["metric"], "target": float(goal["target"])}
    return None


# -- the per-phase time split ---------------------------------------------------------------

SPLIT_GROUPS = ("time_compute", "time_communication", "time_data_loading")
SPLIT_PHASES = (
    "time_batch_load",
    "time_fwd_pass",
    "time_comp_loss",
    "time_backprop",
    "time_agg",
    "time_opt_step",
    "time_comp_metrics",
    "time_validation",
    "time_sync",
)


def phase_label(series: str) -> str:
    """``time_data_loading`` -> ``data loading``."""
    return series.removeprefix("time_").replace("_", " ")


def split_bars(
    points: Sequence[Point], marks: Sequence[tuple[float, float]]
) -> tuple[list[int], list[float]]:
    """Epoch numbers and seconds of a per-epoch timing series (posted at each epoch's end).

    Consecutive points of one epoch (a series downsampled to fewer buckets than it has
    epochs has several per epoch) are averaged into one bar.
    """
    epochs = epoch_at((p["date"] for p in points), marks)
    xs: list[int] = []
    sums: list[tuple[float, int]] = []
    for index, (point, epoch) in enumerate(zip(points, epochs, strict=True)):
        x = round(epoch) if epoch is not None else index + 1
        if xs and xs[-1] == x:
            total, count = sums[-1]
            sums[-1] = (total + float(point["value"]), count + 1)
        else:
            xs.append(x)
            sums.append((float(point["value"]), 1))
    return xs, [total / count for total, count in sums]


# -- comparing runs -------------------------------------------------------------------------


MEASURES = {  # what a configuration is compared by: name -> (label, lower is better)
    "time_to_target_s": ("time to target (s)", True),
    "throughput": ("throughput (samples/s)", False),  # synthetic data: no goal to reach
}


@dataclass(frozen=True)
class Scaling:
    """How one worker count did against the baseline (1 worker, when there is such a run),
    in one configuration: by its time to target, or (synthetic data) its throughput."""

    workers: int
    runs: int
    value: float  # median over the runs
    speedup: float
    efficiency: float
    split: dict[str, float]
    measure: str = "time_to_target_s"

    @property
    def time_to_target_s(self) -> float | None:
        return self.value if self.measure == "time_to_target_s" else None


SPLIT_KEYS = ("compute_s", "communication_s", "data_loading_s")


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def comparable(run: Mapping[str, Any]) -> tuple[int, float, str, dict[str, float]] | None:
    """(workers, value, measure, split) of a finished run whose result has them: its time to
    target, or for synthetic data its throughput; else None."""
    result = run.get("result")
    if run.get("state") != "FINISHED" or not isinstance(result, Mapping):
        return None
    workers = result.get("world_size", run.get("num_workers"))
    if not isinstance(workers, int) or workers < 1:
        return None
    if _positive(result.get("time_to_target_s")):
        measure = "time_to_target_s"
    elif (run.get("synthetic") or result.get("synthetic")) and _positive(result.get("throughput")):
        measure = "throughput"
    else:
        return None
    split_in = result.get("split") if isinstance(result.get("split"), Mapping) else {}
    split = {k: float(split_in[k]) for k in SPLIT_KEYS if isinstance(split_in.get(k), int | float)}
    return workers, float(result[measure]), measure, split


def scaling(runs: Iterable[Mapping[str, Any]]) -> tuple[list[Scaling], int | None]:
    """Time to target (or throughput), speedup and efficiency per worker count, and the
    baseline's count, for runs of ONE configuration (:mod:`mlbench_core.configuration`).

    Runs of one worker count are summarised by their median and mean split. The baseline is
    1 worker; without such a run it is the smallest count N0, taken to scale ideally
    (speedup N0 at N0 workers). Runs that cannot be compared are left out, and so are runs
    measured otherwise than the first one (they are of another configuration)."""
    by_workers: dict[int, list[tuple[float, dict[str, float]]]] = {}
    measure = None
    for run in runs:
        found = comparable(run)
        if found is None:
            continue
        workers, value, kind, split = found
        measure = measure or kind
        if kind == measure:
            by_workers.setdefault(workers, []).append((value, split))
    if not by_workers or measure is None:
        return [], None
    lower_is_better = MEASURES[measure][1]
    base_workers = min(by_workers)
    base = statistics.median(v for v, _ in by_workers[base_workers])
    rows = []
    for workers in sorted(by_workers):
        entries = by_workers[workers]
        value = statistics.median(v for v, _ in entries)
        ratio = base / value if lower_is_better else value / base
        speedup = base_workers * ratio
        split = {
            key: statistics.fmean(s[key] for _, s in entries if key in s)
            for key in SPLIT_KEYS
            if any(key in s for _, s in entries)
        }
        rows.append(
            Scaling(workers, len(entries), value, speedup, speedup / workers, split, measure)
        )
    return rows, base_workers
