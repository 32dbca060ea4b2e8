"""A result and a record as rows a person reads."""

from __future__ import annotations

from mlbench_core.result_view import record_sections, result_rows, show_bytes

RESULT = {
    "benchmark": "1a",
    "goal": {"metric": "val_top1", "target": 70.0},
    "reached": True,
    "time_to_target_s": 125.0,
    "total_time_s": 130.0,
    "training_s": 100.0,
    "validation_s": 20.0,
    "throughput": 414.04,
    "throughput_overall": 269.2,
    "samples": 41404,
    "epochs": 3,
    "final": {"val_top1": 71.2, "train_loss": 0.5},
    "split": {"compute_s": 80.0, "communication_s": 15.0},
    "memory": {
        "peak_bytes": 4076 * 2**20,
        "rank": 1,
        "per_rank": [
            {"peak_bytes": 2000 * 2**20, "by": "cgroup"},
            {"peak_bytes": 4076 * 2**20, "by": "cgroup"},
        ],
    },
    "phases": {"fwd_pass": 40.0},
    "seed": 42,
}


def test_the_headline_figures_come_first_with_units():
    rows = dict(result_rows(RESULT))
    labels = [label for label, _ in result_rows(RESULT)]
    assert labels[:4] == ["goal", "goal reached", "time to target", "epochs run"]
    assert rows["goal"] == "val_top1 >= 70"
    assert rows["time to target"] == "2m05s"
    assert rows["throughput (training steps)"] == "414 samples/s"
    assert rows["throughput (whole run)"] == "269.2 samples/s"
    assert rows["peak memory (largest rank)"] == "4,076 MiB (rank 1, cgroup)"
    assert rows["peak memory rank 0"] == "2,000 MiB"
    assert rows["final val_top1"] == "71.2"
    assert rows["communication (rank 0)"] == "15.0 s"
    assert rows["benchmark"] == "1a" and rows["seed"] == "42"
    assert "phases" not in rows and "rows" not in rows


def test_a_synthetic_result_has_no_goal_and_text_stays_text():
    rows = dict(result_rows({"synthetic": True, "goal": None, "throughput": 10.0}))
    assert rows["goal"] == "none (throughput only)"
    assert result_rows("a sentence") == [("result", "a sentence")]
    assert result_rows(None) == []
    assert show_bytes(512) == "512 bytes" and show_bytes(None) == "-"


def test_a_record_in_sections():
    record = {"seed": 1, "versions": {"torch": "2.13.0"}, "data": {"files": [{"name": "a"}]}}
    sections = dict(record_sections(record))
    assert sections["run"] == [("seed", "1")]
    assert sections["versions"] == [("torch", "2.13.0")]
    assert sections["data"] == [("files[0].name", "a")]
