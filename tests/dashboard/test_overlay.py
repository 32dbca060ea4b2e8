"""dashboard.overlay: curves on each axis, the median and band of repeated runs, the
diff-only table and the CSV exports."""

from __future__ import annotations

import csv
import io
import json

import pytest

from dashboard import overlay
from dashboard.overlay import Curve


def _run(run_id: int, **fields) -> dict:
    base = {"id": run_id, "name": f"r{run_id}", "benchmark": "digits", "num_workers": 2,
            "num_cpus": 1.0, "max_bandwidth": None, "backend": "gloo", "gpu_enabled": False,
            "light_target": False, "synthetic": False, "settings": {}, "seed": run_id,
            "tags": [], "state": "FINISHED", "started_at": "2026-12-01T00:00:00Z",
            "result": {"time_to_target_s": 10.0 * run_id,
                       "throughput": 100.0 * run_id}}  # fmt: skip
    return {**base, **fields}


def _point(second: float, value: float, **meta) -> dict:
    point = {"date": f"2026-12-01T00:00:{second:06.3f}Z", "value": value}
    if meta:
        point["metadata"] = json.dumps(meta)
    return point


SERIES = {
    "train_loss": [
        _point(5, 2.0, samples=640),
        _point(15, 1.0, samples=1280),
        _point(25, 0.5),
    ],  # fmt: skip
    "epoch": [_point(10, 1), _point(20, 2), _point(30, 3)],
}


def test_each_axis_places_the_points_and_leaves_out_those_without_an_x():
    run = _run(1)
    assert overlay.xs_of(run, SERIES, "train_loss", "time") == ([5.0, 15.0, 25.0], [2, 1, 0.5])
    xs, ys = overlay.xs_of(run, SERIES, "train_loss", "epoch")
    assert xs == pytest.approx([0.5, 1.5, 2.5]) and ys == [2.0, 1.0, 0.5]
    assert overlay.xs_of(run, SERIES, "train_loss", "samples") == ([640.0, 1280.0], [2.0, 1.0])
    with pytest.raises(ValueError, match="axis 'steps'"):
        overlay.xs_of(run, SERIES, "train_loss", "steps")


def test_wall_time_counts_from_the_earlier_of_the_start_and_the_first_point():
    late = _run(1, started_at="2026-12-01T00:00:04Z")
    assert overlay.xs_of(late, SERIES, "train_loss", "time")[0] == [1.0, 11.0, 21.0]
    early = _run(1, started_at="2026-12-01T00:00:10Z")
    assert overlay.xs_of(early, SERIES, "train_loss", "time")[0] == [0.0, 10.0, 20.0]


def test_the_band_is_the_median_and_range_where_all_runs_have_points():
    a = Curve(1, "a", [0, 10], [1.0, 2.0])
    b = Curve(2, "b", [0, 10], [3.0, 4.0])
    c = Curve(3, "c", [2, 12], [5.0, 6.0])
    xs, mids, lows, highs = overlay.band([a, b, c])
    assert xs[0] == 2 and xs[-1] == 10  # only the range they share
    assert mids[0] == pytest.approx(3.2) and lows[0] == pytest.approx(1.2)
    assert highs[0] == pytest.approx(5.0) and highs[-1] == pytest.approx(5.8)
    assert all(lo <= mid <= hi for lo, mid, hi in zip(lows, mids, highs, strict=True))
    assert overlay.band([a]) == ([], [], [], [])
    assert overlay.band([a, Curve(4, "d", [20, 30], [1.0, 1.0])]) == ([], [], [], [])


def test_runs_are_grouped_by_their_whole_configuration_not_their_seed():
    runs = [_run(1), _run(2), _run(3, num_workers=4), _run(4, tags=["x"])]
    groups = overlay.grouped(runs)
    assert [[r["id"] for r in g.runs] for g in groups] == [[1, 2, 4], [3]]


def test_the_table_shows_exactly_what_differs_then_the_results():
    runs = [_run(1), _run(2, num_cpus=2.0), _run(3, num_cpus=2.0, max_bandwidth=100.0)]
    columns, rows, fixed = overlay.differences(runs, "train_loss")
    assert columns[:4] == ["run", "CPUs per worker", "bandwidth cap", "seed"]
    assert "workers" not in columns and "benchmark" not in columns
    assert [row["CPUs per worker"] for row in rows] == ["1", "2", "2"]
    assert [row["bandwidth cap"] for row in rows] == ["none", "none", "100 Mbit/s"]
    assert fixed["benchmark"] == "digits" and fixed["workers"] == "2"
    assert rows[2]["time to target (s)"] == "30" and rows[0]["throughput (samples/s)"] == "100"
    same = overlay.differences([_run(1, seed=0), _run(2, seed=0)], "train_loss")[0]
    assert same[:2] == ["run", "state"]  # nothing differs: no configuration column


def test_csv_exports_have_a_row_per_run_and_per_point():
    runs = [_run(1), _run(2, num_cpus=2.0)]
    columns, rows, _ = overlay.differences(runs, "train_loss")
    table = list(csv.DictReader(io.StringIO(overlay.table_csv(columns, rows))))
    assert [row["CPUs per worker"] for row in table] == ["1", "2"]
    drawn = overlay.curves(runs, {1: SERIES, 2: SERIES}, "train_loss", "samples")
    lines = list(csv.reader(io.StringIO(overlay.series_csv(drawn, "train_loss", "samples"))))
    assert lines[0] == ["run_id", "run", "samples", "train_loss"]
    assert lines[1:] == [["1", "r1", "640.0", "2.0"], ["1", "r1", "1280.0", "1.0"],
                         ["2", "r2", "640.0", "2.0"], ["2", "r2", "1280.0", "1.0"]]  # fmt: skip


def test_run_ids_of_a_url():
    assert overlay.run_ids("3,1,3, x,2") == [3, 1, 2]
    assert overlay.run_ids(None) == []
    assert len(overlay.run_ids(",".join(map(str, range(50))))) == overlay.MAX_RUNS
