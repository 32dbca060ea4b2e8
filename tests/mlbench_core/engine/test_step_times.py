"""The step-time sample a run keeps: every step while few, then evenly thinned, bounded."""

from __future__ import annotations

import pytest

from mlbench_core.engine.step_times import StepTimes


def test_few_steps_are_all_kept():
    times = StepTimes(capacity=8)
    for i in range(8):
        times.add(float(i))
    assert times.summary() == {"seconds": [float(i) for i in range(8)], "steps": 8, "stride": 1}


@pytest.mark.parametrize("steps", [9, 100, 1000, 12345])
def test_many_steps_are_thinned_evenly_over_the_whole_run(steps):
    times = StepTimes(capacity=16)
    for i in range(steps):
        times.add(float(i))
    summary = times.summary()
    kept = summary["seconds"]
    stride = summary["stride"]
    assert summary["steps"] == steps
    assert len(kept) <= 16
    assert kept == [float(i) for i in range(0, steps, stride)]  # every stride-th step
    assert kept[-1] >= steps - stride  # reaches the end of the run, not just its start
    assert len(kept) > 16 // 2  # never thinner than needed


def test_a_capacity_below_two_is_refused():
    with pytest.raises(ValueError, match="at least 2"):
        StepTimes(capacity=1)
