"""The comparison on synthetic histories: stable, one real step, noisy without change, too
short; and what is measured of a run."""

from __future__ import annotations

import pytest

from mlbench_core.nightly.compare import compare_entry, judge, mad, measure

STABLE = [10.0, 10.1, 9.9, 10.05, 9.95, 10.0, 10.02]


def seconds(today: list[float], history: list[float]):  # noqa: ANN201
    return judge("time_to_target_s", today, history, higher_is_worse=True)


def test_stable_history_and_an_unchanged_night_is_ok():
    verdict = seconds([10.03, 9.98], STABLE)
    assert verdict.status == "ok" and verdict.baseline == 10.0 and verdict.history == 7


def test_one_real_step_change_is_a_regression_and_says_how_much():
    verdict = seconds([12.0, 12.1], STABLE)
    assert verdict.status == "regression"
    assert verdict.relative == pytest.approx(0.205, abs=1e-3)
    assert "vs baseline 10" in verdict.describe() and "+20.5%" in verdict.describe()
    assert seconds([8.0], STABLE).status == "improvement"


def test_a_noisy_history_without_change_is_not_a_regression():
    noisy = [8.0, 12.0, 9.5, 11.0, 10.5, 8.5, 11.5]  # median 10.5, MAD 1.0: sigma 1.48
    assert seconds([11.8], noisy).status == "ok"  # within one sigma
    # The same change against the stable history is beyond its (narrow) band.
    assert seconds([11.8], STABLE).status == "regression"


def test_the_band_comes_from_the_history_not_a_fixed_percentage():
    narrow = seconds([10.5], STABLE)
    wide = seconds([10.5], [8.0, 12.0, 9.0, 11.0, 10.0])
    assert narrow.band < 1.0 < wide.band
    assert narrow.status == "regression" and wide.status == "ok"
    assert mad([1.0, 2.0, 3.0, 4.0, 100.0]) == 1.0  # robust to one outlier


def test_too_little_history_says_so():
    verdict = seconds([30.0], [10.0, 10.1])
    assert verdict.status == "insufficient-history" and verdict.baseline is None
    assert "2 past values, 3 needed" in verdict.reason
    assert seconds([], STABLE).status == "no-data"


def test_directions_per_metric():
    history = [{"throughput": t, "reached": True, "time_to_target_s": 5.0} for t in STABLE]
    slower = compare_entry([{"throughput": 7.0, "reached": True, "time_to_target_s": 5.0}], history)
    assert slower["throughput"].status == "regression"  # lower throughput is worse
    assert slower["time_to_target_s"].status == "ok"
    assert slower["peak_memory_bytes"].status == "no-data"


def test_a_goal_missed_after_being_reached_is_a_regression():
    history = [{"reached": True, "time_to_target_s": 5.0}] * 3
    verdicts = compare_entry([{"reached": False, "time_to_target_s": None}], history)
    assert verdicts["time_to_target_s"].status == "regression"
    assert "not reached" in verdicts["time_to_target_s"].reason


def test_measure_takes_the_result_and_peak_memory():
    result = {
        "reached": True,
        "time_to_target_s": 4.0,
        "throughput": 1000.0,
        "split": {"data_loading_s": 1.0, "compute_s": 6.0, "communication_s": 3.0},
    }
    assert measure(result, 2e8) == {
        "reached": True,
        "time_to_target_s": 4.0,
        "throughput": 1000.0,
        "communication_share": 0.3,
        "peak_memory_bytes": 2e8,
    }
    assert measure({**result, "reached": False})["time_to_target_s"] is None
    assert measure(None)["throughput"] is None
