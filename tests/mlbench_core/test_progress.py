"""A run's phase and ETA from its state, job metadata and epoch series."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mlbench_core.progress import progress

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def _run(state: str = "STARTED", **meta) -> dict:
    return {"state": state, "started_at": _at(0), "job_metadata": {"epochs": 5, **meta}}


def test_the_phases_before_training():
    assert progress(_run("INITIALIZED"), {}).text() == "scheduling"
    waiting = _run("INITIALIZED", waiting={"reason": "waiting for 4 CPUs"})
    assert progress(waiting, {}).text() == "queued (waiting for 4 CPUs)"
    assert progress(_run(), {}).phase == "preparing"
    assert progress(_run(launched={"attempt": 1}), {}).phase == "starting workers"


def test_training_with_an_eta_from_the_epochs_so_far():
    series = {"epoch": [{"date": _at(20), "value": 1}, {"date": _at(30), "value": 2}]}
    now = T0 + timedelta(seconds=34)
    shown = progress(_run(), series, now=now)
    assert (shown.phase, shown.epoch, shown.done) == ("training", 3, 2)
    # start-up left out: 10 s per epoch (epochs 1 -> 2), 3 epochs left, 4 s into epoch 3
    assert shown.eta_s == pytest.approx(26.0)
    assert shown.text() == "training epoch 3 of 5, at most 26.0 s left"
    assert shown.fraction == pytest.approx(0.4)
    synthetic = progress({**_run(), "synthetic": True}, series, now=now)
    assert synthetic.text().endswith("about 26.0 s left")  # no goal: no early stop


def test_one_epoch_done_counts_from_the_start():
    series = {"epoch": [{"date": _at(12), "value": 1}]}
    shown = progress(_run(), series, now=T0 + timedelta(seconds=12))
    assert shown.eta_s == pytest.approx(48.0)


def test_validating_only_after_the_last_epoch_mark():
    series = {
        "epoch": [{"date": _at(10), "value": 1}],
        "validation_started": [{"date": _at(5), "value": 1}, {"date": _at(18), "value": 2}],
    }
    assert (
        progress(_run(), series, now=T0 + timedelta(seconds=19))
        .text()
        .startswith("validating epoch 2 of 5")
    )
    series["validation_started"].pop()
    assert progress(_run(), series).phase == "training"


def test_ended_runs_and_runs_without_epochs():
    series = {"epoch": [{"date": _at(10), "value": 5}]}
    assert progress(_run(), series).text() == "finishing after epoch 5 of 5"
    assert progress(_run("FINISHED"), series).text() == "done after epoch 5 of 5"
    assert progress(_run("FAILED"), {}).text() == "failed"
    unplanned = {"state": "STARTED", "job_metadata": {}}
    assert progress(unplanned, series).text() == "training epoch 6"
    allreduce = {"state": "STARTED", "benchmark": "0a", "job_metadata": {}}
    assert progress(allreduce, {"allreduce_latency_us": [{"date": _at(1), "value": 3}]}).phase == (
        "measuring"
    )
