"""PhaseTracker: seconds per phase, one phase current at a time, per epoch and in total."""

from __future__ import annotations

import time

import pytest

from mlbench_core.engine.tracker import GROUPS, PHASES, PhaseTracker


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def zeros(**seconds: float) -> dict[str, float]:
    return {**dict.fromkeys(PHASES, 0.0), **seconds}


def test_switching_charges_the_phase_left():
    clock = Clock()
    tracker = PhaseTracker(clock)
    for _ in range(2):
        tracker.switch("batch_load")
        clock.now += 1
        tracker.switch("fwd_pass")
        clock.now += 3
        tracker.switch("agg")
        clock.now += 0.5
        tracker.pause()
        clock.now += 50  # paused: not counted
    assert tracker.end_epoch() == zeros(batch_load=2.0, fwd_pass=6.0, agg=1.0)
    tracker.switch("sync")
    clock.now += 0.25
    assert tracker.end_epoch() == zeros(sync=0.25)
    assert tracker.totals == zeros(batch_load=2.0, fwd_pass=6.0, agg=1.0, sync=0.25)
    assert [sum(e.values()) for e in tracker.epochs] == [9.0, 0.25]
    assert tracker.split() == {"data_loading_s": 2.0, "compute_s": 6.0, "communication_s": 1.25}


def test_every_phase_belongs_to_one_group():
    assert set(GROUPS) == set(PHASES)
    assert set(GROUPS.values()) == {"data", "compute", "communication"}


def test_the_current_phase_is_split_at_epoch_end_and_stays_current():
    clock = Clock()
    tracker = PhaseTracker(clock)
    tracker.switch("backprop")
    clock.now += 1
    assert tracker.totals["backprop"] == 1.0
    assert tracker.end_epoch()["backprop"] == 1.0
    clock.now += 2
    assert tracker.current == "backprop"
    assert tracker.end_epoch()["backprop"] == 2.0
    assert tracker.totals["backprop"] == 3.0


def test_a_phase_block_returns_to_the_phase_before():
    clock = Clock()
    tracker = PhaseTracker(clock)
    tracker.switch("opt_step")
    clock.now += 1
    with tracker.phase("sync"):
        clock.now += 2
    assert tracker.current == "opt_step"
    clock.now += 4
    with pytest.raises(RuntimeError), tracker.phase("validation"):
        clock.now += 8
        raise RuntimeError("boom")
    tracker.pause()
    with tracker.phase("batch_load"):
        clock.now += 16
    assert tracker.current is None
    clock.now += 100
    assert tracker.totals == zeros(opt_step=5.0, sync=2.0, validation=8.0, batch_load=16.0)


def test_restored_totals_are_carried_over():
    clock = Clock()
    tracker = PhaseTracker(clock)
    tracker.restore({"agg": 10.0, "batch_load": 1.0})
    tracker.switch("agg")
    clock.now += 1
    assert tracker.totals == zeros(agg=11.0, batch_load=1.0)
    assert tracker.split()["communication_s"] == 11.0
    with pytest.raises(ValueError, match="unknown phases"):
        tracker.restore({"io": 1.0})


def test_unknown_phase_is_refused():
    with pytest.raises(ValueError, match=", ".join(PHASES)):
        PhaseTracker().switch("io")


def test_with_the_real_clock():
    tracker = PhaseTracker()
    tracker.switch("batch_load")
    time.sleep(0.05)
    tracker.pause()
    assert 0.05 <= tracker.totals["batch_load"] < 1.0
