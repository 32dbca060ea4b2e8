"""The pure derivations behind the charts."""

from __future__ import annotations

import math

import pytest

from dashboard.series import (
    RESOURCES,
    comparable,
    derive,
    epoch_at,
    epoch_marks,
    newest_date,
    rate,
    run_goal,
    scaling,
    split_bars,
)


def at(second: float) -> str:
    """An API date ``second`` seconds after 2026-01-01T00:00:00Z."""
    whole = int(second)
    micros = round((second - whole) * 1e6)
    minutes, secs = divmod(whole, 60)
    return f"2026-01-01T00:{minutes:02d}:{secs:02d}.{micros:06d}Z"


def pts(*pairs: tuple[float, float]) -> list[dict]:
    return [{"date": at(t), "value": v} for t, v in pairs]


RESOURCE = {r.key: r for r in RESOURCES}


def test_rate_of_a_counter_per_second_dated_at_the_later_point():
    dates, values = rate(pts((0, 10), (2, 14), (4, 20)))
    assert dates == [at(2), at(4)]
    assert values == [2.0, 3.0]


def test_rate_continues_from_the_previous_fetch():
    previous = pts((0, 100))[0]
    assert rate(pts((5, 150)), previous) == ([at(5)], [10.0])


def test_rate_after_a_counter_reset_counts_from_zero():
    assert rate(pts((0, 500), (1, 30)))[1] == [30.0]


def test_rate_skips_a_point_fetched_twice():
    assert rate(pts((0, 1), (0, 1), (1, 3))) == ([at(1)], [2.0])


def test_rate_of_nothing_is_empty():
    assert rate([]) == ([], [])
    assert rate(pts((0, 1))) == ([], [])


def test_cpu_seconds_become_cores():
    _, cores = derive(RESOURCE["cpu"], pts((0, 0), (5, 7.5)))
    assert cores == [1.5]


def test_network_bytes_become_megabits_per_second():
    _, mbps = derive(RESOURCE["net-in"], pts((0, 0), (1, 1_250_000)))
    assert mbps == [pytest.approx(10.0)]


def test_memory_is_a_gauge_in_mib():
    dates, mib = derive(RESOURCE["memory"], pts((0, 2**20), (1, 3 * 2**20)))
    assert dates == [at(0), at(1)] and mib == [1.0, 3.0]


def test_newest_date():
    assert newest_date({"a": pts((1, 0), (3, 0)), "b": pts((2, 0)), "c": []}) == at(3)
    assert newest_date({}) is None


# -- epochs ---------------------------------------------------------------------------------


def test_epoch_marks_start_at_epoch_zero():
    marks = epoch_marks(pts((10, 1), (20, 2)), at(0))
    assert [e for _, e in marks] == [0.0, 1.0, 2.0]
    assert epoch_marks(pts((10, 1)), at(15))[0][1] == 1.0  # a start after the first: ignored


def test_epoch_at_interpolates_between_epoch_ends():
    marks = epoch_marks(pts((10, 1), (20, 2)), at(0))
    assert epoch_at([at(5), at(10), at(15)], marks) == [
        pytest.approx(0.5),
        pytest.approx(1.0),
        pytest.approx(1.5),
    ]


def test_epoch_at_extrapolates_the_current_epoch_but_not_past_it():
    marks = epoch_marks(pts((10, 1), (20, 2)), at(0))
    ahead = epoch_at([at(25), at(100)], marks)
    assert ahead[0] == pytest.approx(2.5)
    assert 2.99 <= ahead[1] < 3.0


def test_epoch_at_before_the_first_mark_is_the_first_epoch():
    marks = epoch_marks(pts((10, 1), (20, 2)), None)
    assert epoch_at([at(1)], marks) == [1.0]


def test_epoch_at_is_unknown_without_a_finished_epoch():
    assert epoch_at([at(1), at(2)], epoch_marks([], at(0))) == [None, None]


def test_epoch_at_reads_a_downsampled_epoch_series():
    # summarize averages a step function: still increasing, so still a usable axis
    marks = epoch_marks(pts((10, 1.4), (30, 2.6)), None)
    assert epoch_at([at(20)], marks) == [pytest.approx(2.0)]


def test_split_bars_are_per_epoch():
    marks = epoch_marks(pts((10, 1), (20, 2)), at(0))
    # the timing series is posted just after the epoch mark
    xs, ys = split_bars(pts((10.001, 3.0), (20.001, 4.0)), marks)
    assert xs == [1, 2] and ys == [3.0, 4.0]


def test_split_bars_average_points_of_one_epoch():
    marks = epoch_marks(pts((10, 1), (20, 2)), at(0))
    assert split_bars(pts((9.9, 2.0), (10.1, 4.0), (20, 5.0)), marks) == ([1, 2], [3.0, 5.0])


def test_split_bars_without_epochs_count_points():
    assert split_bars(pts((1, 3.0), (2, 4.0)), []) == ([1, 2], [3.0, 4.0])


# -- goals ----------------------------------------------------------------------------------

BENCHMARKS = [
    {
        "id": "digits",
        "goal": {"metric": "val_accuracy", "target": 95.0},
        "light_goal": {"metric": "val_accuracy", "target": 90.0},
    }
]


def test_goal_from_the_result_first():
    run = {"benchmark": "digits", "result": {"goal": {"metric": "val_top1", "target": 80}}}
    assert run_goal(run, BENCHMARKS) == {"metric": "val_top1", "target": 80.0}


def test_goal_from_the_registry_light_or_not():
    assert run_goal({"benchmark": "digits"}, BENCHMARKS)["target"] == 95.0
    assert run_goal({"benchmark": "digits", "synthetic": True}, BENCHMARKS) is None
    assert run_goal({"benchmark": "digits", "light_target": True}, BENCHMARKS)["target"] == 90.0
    assert run_goal({"benchmark": "other"}, BENCHMARKS) is None
    assert run_goal({"benchmark": "digits"}) is None


# -- comparing runs -------------------------------------------------------------------------


def finished(workers: int, seconds: float, **split: float) -> dict:
    return {
        "state": "FINISHED",
        "num_workers": workers,
        "result": {"time_to_target_s": seconds, "world_size": workers, "split": split},
    }


def test_comparable_needs_a_finished_run_with_a_time():
    assert comparable(finished(2, 10.0, compute_s=6.0)) == (
        2, 10.0, "time_to_target_s", {"compute_s": 6.0}
    )  # fmt: skip
    synthetic = {"state": "FINISHED", "synthetic": True, "num_workers": 2,
                 "result": {"throughput": 500.0, "world_size": 2}}  # fmt: skip
    assert comparable(synthetic) == (2, 500.0, "throughput", {})
    assert comparable({**finished(2, 10.0), "state": "FAILED"}) is None
    assert comparable({"state": "FINISHED", "result": {"time_to_target_s": None}}) is None
    assert comparable({"state": "FINISHED", "result": "text"}) is None
    assert comparable(finished(2, math.inf)) is None


def test_speedup_and_efficiency_against_one_worker():
    rows, base = scaling([finished(1, 100.0), finished(2, 60.0), finished(4, 40.0)])
    assert base == 1
    assert [r.workers for r in rows] == [1, 2, 4]
    assert [r.speedup for r in rows] == [pytest.approx(1.0), pytest.approx(100 / 60), 2.5]
    assert [r.efficiency for r in rows] == [
        pytest.approx(1.0),
        pytest.approx(100 / 120),
        pytest.approx(0.625),
    ]


def test_runs_of_one_count_are_summarised_by_median_time_and_mean_split():
    rows, _ = scaling(
        [
            finished(1, 100.0, compute_s=80.0, communication_s=0.0),
            finished(2, 50.0, compute_s=30.0, communication_s=10.0),
            finished(2, 70.0, compute_s=40.0, communication_s=20.0),
            finished(2, 60.0, compute_s=35.0, communication_s=15.0),
        ]
    )
    two = rows[1]
    assert two.runs == 3 and two.time_to_target_s == 60.0
    assert two.split == {"compute_s": 35.0, "communication_s": 15.0}


def test_without_one_worker_the_smallest_count_is_the_ideal_baseline():
    rows, base = scaling([finished(2, 50.0), finished(4, 30.0)])
    assert base == 2
    assert rows[0].speedup == 2.0 and rows[0].efficiency == 1.0
    assert rows[1].speedup == pytest.approx(100 / 30)


def test_throughput_scales_the_other_way():
    def synthetic(workers: int, rate: float) -> dict:
        return {"state": "FINISHED", "synthetic": True, "num_workers": workers,
                "result": {"throughput": rate, "world_size": workers}}  # fmt: skip

    rows, base = scaling([synthetic(1, 100.0), synthetic(2, 150.0), finished(2, 10.0)])
    assert base == 1 and [r.measure for r in rows] == ["throughput", "throughput"]
    assert [r.speedup for r in rows] == [1.0, 1.5]  # the time-to-target run is left out
    assert rows[1].time_to_target_s is None


def test_nothing_to_compare():
    assert scaling([{"state": "STARTED"}]) == ([], None)
