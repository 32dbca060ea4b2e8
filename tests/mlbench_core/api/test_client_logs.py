"""ApiClient.put_result, post_logs and get_logs against the real API (``live_server``)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mlbench_core.api import Forbidden, NotFound, ValidationFailed


def test_a_worker_puts_its_runs_result(client, worker, run):
    result = {"reached": True, "time_to_target_s": 1.5, "split": {"compute_s": 1.0}}
    answer = worker.put_result(run["id"], result)
    assert answer["result"] == result
    assert client.get_run(run["id"])["result"] == result
    assert client.put_result(run["id"], "failed: no result")["result"] == "failed: no result"


def test_put_result_of_another_or_unknown_run_fails(client, worker, run):
    other = client.create_run("other", 1, benchmark="digits")
    with pytest.raises(Forbidden):
        worker.put_result(other["id"], {"reached": False})
    with pytest.raises(NotFound):
        client.put_result(999, {"reached": False})
    assert client.get_run(other["id"])["result"] is None


def test_logs_round_trip_in_order_and_resume(client, worker, run):
    stamp = datetime(2024, 5, 1, 12, 0, 0, 250000)  # naive: UTC
    first = worker.post_logs(
        run["id"],
        [
            {"rank": 0, "stream": "stdout", "line": "epoch 1", "date": stamp},
            {"rank": 1, "stream": "stderr", "line": "warning: slow"},
            {"rank": 0, "line": "epoch 2"},
        ],
    )
    assert first["lines"] == []
    page = client.get_logs(run["id"])
    assert [(x["rank"], x["stream"], x["line"]) for x in page["lines"]] == [
        (0, "stdout", "epoch 1"),
        (1, "stderr", "warning: slow"),
        (0, "stdout", "epoch 2"),
    ]
    assert page["next"] == first["next"] == page["lines"][-1]["id"]
    assert page["lines"][0]["date"] == "2024-05-01T12:00:00.250000Z"
    assert datetime.fromisoformat(page["lines"][1]["date"]) > datetime(2024, 5, 2, tzinfo=UTC)

    worker.post_logs(run["id"], [{"rank": 1, "stream": "stdout", "line": "done"}])
    later = client.get_logs(run["id"], after=page["next"])
    assert [x["line"] for x in later["lines"]] == ["done"]
    assert client.get_logs(run["id"], after=later["next"]) == {"lines": [], "next": later["next"]}

    rank0 = client.get_logs(run["id"], rank=0, limit=1)
    assert [x["line"] for x in rank0["lines"]] == ["epoch 1"]
    rest = client.get_logs(run["id"], rank=0, after=rank0["next"])
    assert [x["line"] for x in rest["lines"]] == ["epoch 2"]


def test_bad_logs_and_reading_as_a_worker_fail(client, worker, run):
    with pytest.raises(ValidationFailed, match="stream"):
        worker.post_logs(run["id"], [{"rank": 0, "stream": "stdin", "line": "x"}])
    with pytest.raises(ValidationFailed):
        worker.post_logs(run["id"], [])
    with pytest.raises(Forbidden):
        worker.get_logs(run["id"])
    with pytest.raises(NotFound):
        client.get_logs(999)
    with pytest.raises(ValidationFailed):
        client.get_logs(run["id"], limit=0)
    assert client.get_logs(run["id"])["lines"] == []
