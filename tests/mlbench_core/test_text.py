"""Short texts of the tables."""

from __future__ import annotations

from datetime import UTC, datetime

from mlbench_core.text import duration, result_summary, show_date, show_seconds


def test_show_seconds():
    assert show_seconds(None) == "-"
    assert show_seconds(12.34) == "12.3 s"
    assert show_seconds(245) == "4m05s"
    assert show_seconds(3723) == "1h02m03s"


def test_show_date_in_utc():
    assert show_date("2026-11-23T04:31:07.123456Z") == "2026-11-23 04:31:07"
    assert show_date(None) == "-" and show_date("nonsense") == "-"


def test_duration_of_going_and_ended_runs():
    run = {"started_at": "2026-01-01T00:00:00Z", "finished_at": "2026-01-01T00:01:30Z"}
    assert duration(run) == 90.0
    now = datetime(2026, 1, 1, 0, 0, 10, tzinfo=UTC)
    assert duration({"started_at": "2026-01-01T00:00:00Z", "state": "STARTED"}, now) == 10.0
    assert duration({"state": "INITIALIZED"}) is None
    assert duration({"started_at": "2026-01-01T00:00:00Z", "state": "FAILED"}) is None


def test_result_summary():
    goal = {"metric": "val_accuracy", "target": 95.0}
    assert result_summary(None) == "-"
    reached = {"reached": True, "goal": goal, "time_to_target_s": 12.5}
    assert result_summary(reached) == "val_accuracy 95 reached in 12.5 s"
    missed = {"reached": False, "goal": goal, "final": {"val_accuracy": 91.25}}
    assert result_summary(missed) == "val_accuracy 95 not reached (last 91.25)"
    assert result_summary({"rows": [1, 2], "total_time_s": 3}) == "2 measurements in 3.0 s"
    assert result_summary("x" * 100).endswith("...")
    synthetic = {"synthetic": True, "goal": None, "throughput": 412.37}
    assert result_summary(synthetic) == "throughput only: 412.37 samples/s"
