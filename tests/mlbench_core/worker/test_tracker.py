"""PhaseTracker: seconds per phase, exclusive when nested, per epoch and in total."""

from __future__ import annotations

import time

import pytest

from mlbench_core.worker.tracker import PHASES, PhaseTracker


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_phases_accumulate_per_epoch_and_in_total():
    clock = Clock()
    tracker = PhaseTracker(clock)
    for _ in range(2):
        with tracker.phase("data"):
            clock.now += 1
        with tracker.phase("compute"):
            clock.now += 3
        clock.now += 50  # outside any phase: not counted
    assert tracker.end_epoch() == {"data": 2.0, "compute": 6.0, "communication": 0.0}
    with tracker.phase("communication"):
        clock.now += 0.5
    assert tracker.end_epoch() == {"data": 0.0, "compute": 0.0, "communication": 0.5}
    assert tracker.totals == {"data": 2.0, "compute": 6.0, "communication": 0.5}
    assert [sum(e.values()) for e in tracker.epochs] == [8.0, 0.5]
    assert tracker.split() == {"data_loading_s": 2.0, "compute_s": 6.0, "communication_s": 0.5}


def test_nested_time_is_charged_to_the_innermost_phase_only():
    clock = Clock()
    tracker = PhaseTracker(clock)
    with tracker.phase("compute"):
        clock.now += 1
        with tracker.phase("communication"):
            clock.now += 2
        clock.now += 4
    assert tracker.totals == {"data": 0.0, "compute": 5.0, "communication": 2.0}


def test_open_phases_count_in_totals_and_are_split_at_epoch_end():
    clock = Clock()
    tracker = PhaseTracker(clock)
    with tracker.phase("compute"):
        clock.now += 1
        assert tracker.totals["compute"] == 1.0
        assert tracker.end_epoch()["compute"] == 1.0
        clock.now += 2
    assert tracker.end_epoch()["compute"] == 2.0
    assert tracker.totals["compute"] == 3.0


def test_an_exception_still_closes_the_phase():
    clock = Clock()
    tracker = PhaseTracker(clock)
    with pytest.raises(RuntimeError), tracker.phase("data"):
        clock.now += 1
        raise RuntimeError("boom")
    clock.now += 10
    assert tracker.totals["data"] == 1.0


def test_unknown_phase_is_refused():
    with pytest.raises(ValueError, match=", ".join(PHASES)):
        with PhaseTracker().phase("io"):
            pass


def test_with_the_real_clock():
    tracker = PhaseTracker()
    with tracker.phase("data"):
        time.sleep(0.05)
    assert 0.05 <= tracker.totals["data"] < 1.0
